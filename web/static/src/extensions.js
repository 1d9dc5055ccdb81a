// Reading and writing the spiffworkflow extension elements of a diagram
// element through the modeler's commands, so every edit can be undone and
// what the page saves is what the engine reads (processes/README.md).

export const SPIFF_PROPERTIES = 'spiffworkflow:Properties';
export const SPIFF_OPERATOR = 'spiffworkflow:ServiceTaskOperator';

export function extension(businessObject, type) {
  const values = (businessObject.extensionElements && businessObject.extensionElements.values) || [];
  return values.find((value) => value.$type === type);
}

export function spiffProperty(businessObject, name) {
  const properties = extension(businessObject, SPIFF_PROPERTIES);
  const found = properties && (properties.properties || []).find((p) => p.name === name);
  return found ? (found.value || '') : '';
}

export function operatorOf(businessObject) {
  return extension(businessObject, SPIFF_OPERATOR);
}

export function parametersOf(operator) {
  return (operator && operator.parameterList && operator.parameterList.parameters) || [];
}

function create(moddle, type, attrs, parent) {
  const created = moddle.create(type, attrs);
  created.$parent = parent;
  return created;
}

// The element's bpmn:extensionElements, created when missing.
function ensureExtensionElements(modeler, element) {
  const modeling = modeler.get('modeling');
  const moddle = modeler.get('moddle');
  const businessObject = element.businessObject;
  if (!businessObject.extensionElements) {
    const extensionElements = create(moddle, 'bpmn:ExtensionElements', { values: [] }, businessObject);
    modeling.updateProperties(element, { extensionElements });
  }
  return businessObject.extensionElements;
}

function ensureExtension(modeler, element, type, attrs) {
  const existing = extension(element.businessObject, type);
  if (existing) {
    return existing;
  }
  const extensionElements = ensureExtensionElements(modeler, element);
  const created = create(modeler.get('moddle'), type, attrs, extensionElements);
  modeler.get('modeling').updateModdleProperties(element, extensionElements, {
    values: [...(extensionElements.values || []), created]
  });
  return created;
}

// Set (or, with an empty value, remove) <spiffworkflow:property name=...>.
export function setSpiffProperty(modeler, element, name, value) {
  const modeling = modeler.get('modeling');
  const current = extension(element.businessObject, SPIFF_PROPERTIES);
  const found = current && (current.properties || []).find((p) => p.name === name);
  if (value === '' || value === null || value === undefined) {
    if (found) {
      modeling.updateModdleProperties(element, current, {
        properties: current.properties.filter((p) => p !== found)
      });
    }
    return;
  }
  if (found) {
    modeling.updateModdleProperties(element, found, { value: String(value) });
    return;
  }
  const properties = ensureExtension(modeler, element, SPIFF_PROPERTIES, { properties: [] });
  const created = create(modeler.get('moddle'), 'spiffworkflow:Property',
    { name, value: String(value) }, properties);
  modeling.updateModdleProperties(element, properties, {
    properties: [...(properties.properties || []), created]
  });
}

// Name the handler of a service task; parameters the new handler declares
// keep their values, others are dropped (the engine would refuse them).
export function setHandler(modeler, element, handlerName, declared) {
  const modeling = modeler.get('modeling');
  const moddle = modeler.get('moddle');
  if (!handlerName) {
    const operator = operatorOf(element.businessObject);
    if (operator) {
      const extensionElements = element.businessObject.extensionElements;
      modeling.updateModdleProperties(element, extensionElements, {
        values: extensionElements.values.filter((value) => value !== operator)
      });
    }
    return;
  }
  const operator = ensureExtension(modeler, element, SPIFF_OPERATOR, { id: handlerName });
  const old = new Map(parametersOf(operator).map((p) => [p.id, p]));
  const parameterList = operator.parameterList ||
    create(moddle, 'spiffworkflow:Parameters', { parameters: [] }, operator);
  const parameters = declared
    .filter((spec) => old.has(spec.name) && old.get(spec.name).value)
    .map((spec) => old.get(spec.name));
  modeling.updateModdleProperties(element, operator, { id: handlerName });
  if (!operator.parameterList) {
    modeling.updateModdleProperties(element, operator, { parameterList });
  }
  modeling.updateModdleProperties(element, parameterList, { parameters });
}

// Set (or, empty, remove) one <spiffworkflow:parameter id type value>.
export function setParameter(modeler, element, spec, value) {
  const modeling = modeler.get('modeling');
  const moddle = modeler.get('moddle');
  const operator = operatorOf(element.businessObject);
  if (!operator) {
    return;
  }
  let parameterList = operator.parameterList;
  if (!parameterList) {
    parameterList = create(moddle, 'spiffworkflow:Parameters', { parameters: [] }, operator);
    modeling.updateModdleProperties(element, operator, { parameterList });
  }
  const parameters = parameterList.parameters || [];
  const found = parameters.find((p) => p.id === spec.name);
  if (!value) {
    if (found) {
      modeling.updateModdleProperties(element, parameterList, {
        parameters: parameters.filter((p) => p !== found)
      });
    }
  } else if (found) {
    modeling.updateModdleProperties(element, found, { value });
  } else {
    const created = create(moddle, 'spiffworkflow:Parameter',
      { id: spec.name, type: spec.type || 'str', value }, parameterList);
    modeling.updateModdleProperties(element, parameterList, { parameters: [...parameters, created] });
  }
}

export function setResultVariable(modeler, element, value) {
  const operator = operatorOf(element.businessObject);
  if (operator) {
    modeler.get('modeling').updateModdleProperties(element, operator, { resultVariable: value || undefined });
  }
}

// A sequence flow's condition: a bpmn:FormalExpression, or none when empty.
export function setCondition(modeler, flow, body) {
  const moddle = modeler.get('moddle');
  const conditionExpression = body
    ? create(moddle, 'bpmn:FormalExpression', { body }, flow.businessObject)
    : undefined;
  modeler.get('modeling').updateProperties(flow, { conditionExpression });
}

export function setDefaultFlow(modeler, flow, isDefault) {
  const modeling = modeler.get('modeling');
  const gateway = flow.source;
  if (isDefault) {
    if (flow.businessObject.conditionExpression) {
      modeling.updateProperties(flow, { conditionExpression: undefined });
    }
    modeling.updateProperties(gateway, { default: flow.businessObject });
  } else if (gateway.businessObject.default === flow.businessObject) {
    modeling.updateProperties(gateway, { default: undefined });
  }
}
