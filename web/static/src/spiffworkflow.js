// The moddle description of the SpiffWorkflow extension elements the engine
// reads (see processes/README.md). bpmn-js keeps extension elements it knows
// as typed objects and writes them back exactly; unknown ones would survive
// only as generic elements, so every element the engine reads is declared.
export default {
  name: 'SpiffWorkflow',
  uri: 'http://spiffworkflow.org/bpmn/schema/1.0/core',
  prefix: 'spiffworkflow',
  xml: { tagAlias: 'lowerCase' },
  associations: [],
  types: [
    {
      // SpiffWorkflow reads a multi-instance task's loopDataInputRef and
      // loopDataOutputRef as the NAME of a process variable (district_panel,
      // district_sheets), not as the id of a data element: bpmn-moddle would
      // drop the unresolved reference on export, and the task would lose its
      // collection. Kept as text, still written as bpmn:loopData...Ref.
      name: 'MultiInstanceVariables',
      extends: ['bpmn:MultiInstanceLoopCharacteristics'],
      properties: [
        { name: 'bpmn:loopDataInputRef', type: 'String',
          redefines: 'bpmn:MultiInstanceLoopCharacteristics#loopDataInputRef' },
        { name: 'bpmn:loopDataOutputRef', type: 'String',
          redefines: 'bpmn:MultiInstanceLoopCharacteristics#loopDataOutputRef' }
      ]
    },
    {
      // <spiffworkflow:properties><spiffworkflow:property name value/>...
      name: 'Properties',
      superClass: ['Element'],
      properties: [
        { name: 'properties', type: 'Property', isMany: true }
      ]
    },
    {
      name: 'Property',
      superClass: ['Element'],
      properties: [
        { name: 'name', type: 'String', isAttr: true },
        { name: 'value', type: 'String', isAttr: true }
      ]
    },
    {
      // <spiffworkflow:serviceTaskOperator id="HANDLER" resultVariable="...">
      name: 'ServiceTaskOperator',
      superClass: ['Element'],
      properties: [
        { name: 'id', type: 'String', isAttr: true },
        { name: 'resultVariable', type: 'String', isAttr: true },
        { name: 'parameterList', type: 'Parameters' }
      ]
    },
    {
      name: 'Parameters',
      superClass: ['Element'],
      properties: [
        { name: 'parameters', type: 'Parameter', isMany: true }
      ]
    },
    {
      name: 'Parameter',
      superClass: ['Element'],
      properties: [
        { name: 'id', type: 'String', isAttr: true },
        { name: 'type', type: 'String', isAttr: true },
        { name: 'value', type: 'String', isAttr: true }
      ]
    }
  ]
};
