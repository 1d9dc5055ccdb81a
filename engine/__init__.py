"""The BPMN kernel: check and deploy a diagram, start, complete, claim,
cancel, fire timers, migrate, replay, dry run -- with serialization,
stepping, safe expressions, the clock and the working-day calendar.

The facade is `engine.bpmn_engine.BpmnEngine` (one verb per call, one
transaction per call); what every call shares is `engine.execution`; who
may see and do what is `engine.access`. Nothing here knows Flask or the
programme's pages."""
