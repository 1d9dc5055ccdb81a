// Node (not bundled): read a .bpmn file with bpmn-moddle and the spiff
// extension, write it back to stdout. Tests compare what survives:
//   node web/static/src/roundtrip.js processes/ocop_cycle.bpmn
import { readFileSync } from 'node:fs';
import { BpmnModdle } from 'bpmn-moddle';
import spiffworkflow from './spiffworkflow.js';

const moddle = new BpmnModdle({ spiffworkflow });
const source = readFileSync(process.argv[2], 'utf8');
const { rootElement, warnings } = await moddle.fromXML(source, 'bpmn:Definitions');
for (const warning of warnings) {
  process.stderr.write(`warning: ${warning.message}\n`);
}
const { xml } = await moddle.toXML(rootElement, { format: true });
process.stdout.write(xml + '\n');
