// The compact properties panel: the fields the engine reads, for the
// selected element (see processes/README.md). Markup and its translated
// labels live in templates/modeler/index.html; this fills and reads it.
import {
  operatorOf, parametersOf, setCondition, setDefaultFlow, setHandler, setParameter,
  setResultVariable, setSpiffProperty, spiffProperty
} from './extensions.js';

const TASKS = ['bpmn:UserTask', 'bpmn:ServiceTask', 'bpmn:ScriptTask', 'bpmn:Task',
  'bpmn:ManualTask', 'bpmn:SendTask', 'bpmn:ReceiveTask', 'bpmn:BusinessRuleTask'];
const GATEWAYS_WITH_CONDITIONS = ['bpmn:ExclusiveGateway', 'bpmn:InclusiveGateway'];

function $(id) {
  return document.getElementById(id);
}

function option(value, text) {
  const node = document.createElement('option');
  node.value = value;
  node.textContent = text;
  return node;
}

function normalise(name) {
  return (name || '').split(/\s+/).filter(Boolean).join(' ').toLocaleLowerCase('vi');
}

// A select's value, adding an option for a value not in the list (a
// diagram may name an unknown form or handler: show it, never lose it).
function selectValue(select, value, unknownLabel) {
  for (const node of [...select.options]) {
    if (node.dataset.unknown) {
      node.remove();
    }
  }
  if (value && ![...select.options].some((node) => node.value === value)) {
    const extra = option(value, `${value} (${unknownLabel})`);
    extra.dataset.unknown = '1';
    select.appendChild(extra);
  }
  select.value = value || '';
}

export class Panel {
  constructor(modeler, config, labels) {
    this.modeler = modeler;
    this.config = config;
    this.labels = labels;
    this.element = null;
    this.handlers = new Map(config.handlers.map((h) => [h.name, h]));
    this.roles = new Map();
    for (const lane of config.lanes) {
      this.roles.set(normalise(lane.label), lane);
      this.roles.set(lane.key, lane);
    }
    this.fillChoices();
    this.bindInputs();
    const eventBus = modeler.get('eventBus');
    eventBus.on('selection.changed', ({ newSelection }) => {
      this.show(newSelection.length === 1 ? newSelection[0] : null);
    });
    eventBus.on('elements.changed', ({ elements }) => {
      // Undo, redo or an edit on the canvas: show the current values,
      // unless the user is typing in the panel.
      if (this.element && elements.includes(this.element) &&
          !$('modeler-panel').contains(document.activeElement)) {
        this.show(this.element);
      }
    });
    eventBus.on('import.done', () => this.show(null));
  }

  fillChoices() {
    const none = this.labels.none;
    const step = $('panel-step');
    step.appendChild(option('', none));
    for (const value of this.config.steps) {
      step.appendChild(option(String(value), String(value)));
    }
    const formKey = $('panel-form-key');
    formKey.appendChild(option('', none));
    for (const key of this.config.forms) {
      formKey.appendChild(option(key, key));
    }
    const handler = $('panel-handler');
    handler.appendChild(option('', none));
    for (const spec of this.config.handlers) {
      handler.appendChild(option(spec.name, spec.name));
    }
  }

  bindInputs() {
    const edit = (fn) => (event) => {
      if (this.element) {
        fn(this.element, event.target);
      }
    };
    $('panel-name').addEventListener('change', edit((element, input) => {
      this.modeler.get('modeling').updateProperties(element, { name: input.value.trim() || undefined });
    }));
    for (const input of document.querySelectorAll('#modeler-panel [data-property]')) {
      input.addEventListener('change', edit((element, target) => {
        setSpiffProperty(this.modeler, element, target.dataset.property, target.value.trim());
      }));
    }
    $('panel-handler').addEventListener('change', edit((element, select) => {
      const spec = this.handlers.get(select.value);
      setHandler(this.modeler, element, select.value, spec ? spec.parameters : []);
      this.show(element);
    }));
    $('panel-result-variable').addEventListener('change', edit((element, input) => {
      setResultVariable(this.modeler, element, input.value.trim());
    }));
    $('panel-condition').addEventListener('change', edit((element, input) => {
      setCondition(this.modeler, element, input.value.trim());
    }));
    $('panel-default').addEventListener('change', edit((element, input) => {
      setDefaultFlow(this.modeler, element, input.checked);
      this.show(element);
    }));
  }

  show(element) {
    this.element = element;
    const businessObject = element && element.businessObject;
    const editable = businessObject && !element.labelTarget && element.type !== 'label';
    $('panel-empty').hidden = Boolean(editable);
    $('panel-fields').hidden = !editable;
    if (!editable) {
      return;
    }
    const type = element.type;
    $('panel-id').textContent = businessObject.id;
    $('panel-type').textContent = type.replace(/^bpmn:/, '');
    $('panel-name').value = businessObject.name || '';

    const isTask = TASKS.includes(type);
    $('panel-task').hidden = !isTask;
    if (isTask) {
      selectValue($('panel-step'), spiffProperty(businessObject, 'step'), this.labels.unknown);
    }

    const isUserTask = type === 'bpmn:UserTask';
    $('panel-user-task').hidden = !isUserTask;
    if (isUserTask) {
      selectValue($('panel-form-key'), spiffProperty(businessObject, 'formKey'), this.labels.unknown);
      $('panel-data-key').value = spiffProperty(businessObject, 'dataKey');
      $('panel-due-days').value = spiffProperty(businessObject, 'dueDays');
      $('panel-lane').textContent = this.laneText(element);
    }

    const isServiceTask = type === 'bpmn:ServiceTask';
    $('panel-service-task').hidden = !isServiceTask;
    if (isServiceTask) {
      this.showService(element);
    }

    const isConditionalFlow = type === 'bpmn:SequenceFlow' && element.source &&
      GATEWAYS_WITH_CONDITIONS.includes(element.source.type);
    $('panel-flow').hidden = !isConditionalFlow;
    if (isConditionalFlow) {
      const isDefault = element.source.businessObject.default === businessObject;
      const condition = businessObject.conditionExpression;
      $('panel-condition').value = (condition && condition.body) || '';
      $('panel-condition').disabled = isDefault;
      $('panel-default').checked = isDefault;
    }
  }

  laneText(element) {
    const lane = this.laneOf(element);
    if (!lane) {
      return this.labels.noLane;
    }
    const name = lane.businessObject.name || lane.businessObject.id;
    const role = this.roles.get(normalise(name)) || this.roles.get(name);
    return role ? `${name} — ${this.labels.laneRole}: ${role.key}` : `${name} (${this.labels.laneNotRole})`;
  }

  laneOf(element) {
    const lanes = this.modeler.get('elementRegistry').filter((candidate) =>
      candidate.type === 'bpmn:Lane' &&
      (candidate.businessObject.flowNodeRef || []).includes(element.businessObject));
    // Nested lanes: the innermost one names the role.
    return lanes.find((lane) => !(lane.businessObject.childLaneSet &&
      lane.businessObject.childLaneSet.lanes && lane.businessObject.childLaneSet.lanes.length)) || lanes[0];
  }

  showService(element) {
    const operator = operatorOf(element.businessObject);
    const name = operator ? operator.id || '' : '';
    selectValue($('panel-handler'), name, this.labels.unknown);
    const spec = this.handlers.get(name);
    $('panel-handler-description').textContent = spec ? spec.description : '';
    $('panel-result-variable').value = (operator && operator.resultVariable) || '';
    $('panel-result-variable').disabled = !operator;

    const container = $('panel-parameters');
    container.replaceChildren();
    const values = new Map(parametersOf(operator).map((p) => [p.id, p]));
    const declared = spec ? spec.parameters : [];
    const extra = [...values.keys()].filter((id) => !declared.some((d) => d.name === id))
      .map((id) => ({ name: id, type: values.get(id).type, undeclared: true }));
    for (const parameter of [...declared, ...extra]) {
      const id = `panel-parameter-${parameter.name}`;
      const label = document.createElement('label');
      label.htmlFor = id;
      label.textContent = parameter.name;
      if (parameter.required || parameter.undeclared) {
        const note = document.createElement('small');
        note.textContent = ` (${parameter.undeclared ? this.labels.undeclared : this.labels.required})`;
        label.appendChild(note);
      }
      const input = document.createElement('input');
      input.type = 'text';
      input.id = id;
      input.spellcheck = false;
      input.autocomplete = 'off';
      input.dataset.parameter = parameter.name;
      input.value = values.has(parameter.name) ? values.get(parameter.name).value || '' : '';
      input.addEventListener('change', () => {
        if (this.element === element) {
          setParameter(this.modeler, element, parameter, input.value.trim());
        }
      });
      container.append(label, input);
    }
  }
}
