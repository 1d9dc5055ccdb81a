// The diagram editor page (/modeler/): bpmn-js with the spiffworkflow
// extension, the properties panel, and the check / download / open / deploy
// buttons. Configuration comes from /modeler/config.json and labels from the
// page's data-l-* attributes: nothing inline (the CSP forbids it).
import BpmnModeler from 'bpmn-js/lib/Modeler';
import spiffworkflow from './spiffworkflow.js';
import { Panel } from './panel.js';

const PROBLEM_MARKER = 'ocop-problem';

function $(id) {
  return document.getElementById(id);
}

// data-l-check-ok="…" -> labels.checkOk
function labelsOf(root) {
  const labels = {};
  for (const [key, value] of Object.entries(root.dataset)) {
    if (key.startsWith('l') && key.length > 1 && key[1] === key[1].toUpperCase()) {
      labels[key[1].toLowerCase() + key.slice(2)] = value;
    }
  }
  return labels;
}

async function fetchText(url) {
  const response = await fetch(url, { credentials: 'same-origin' });
  if (!response.ok) {
    throw new Error(`${url}: HTTP ${response.status}`);
  }
  return response.text();
}

async function readJson(response) {
  const type = response.headers.get('Content-Type') || '';
  if (!type.includes('json')) {
    throw new Error(`HTTP ${response.status}`);
  }
  return response.json();
}

class ModelerPage {
  constructor(root, config) {
    this.root = root;
    this.config = config;
    this.labels = labelsOf(root);
    this.dirty = false;
    this.markers = [];
    this.modeler = new BpmnModeler({
      container: $('modeler-canvas'),
      moddleExtensions: { spiffworkflow }
    });
    this.panel = new Panel(this.modeler, config, this.labels);
    this.modeler.get('eventBus').on('commandStack.changed', () => {
      this.dirty = true;
    });
    window.addEventListener('beforeunload', (event) => {
      if (this.dirty) {
        event.preventDefault();
        event.returnValue = this.labels.unsaved;
      }
    });
    this.bindToolbar();
    this.fillProvinces();
  }

  status(text, kind = '') {
    const node = $('modeler-status');
    node.textContent = text;
    node.className = kind;
  }

  async importXML(xml, source) {
    this.clearProblems();
    try {
      const { warnings } = await this.modeler.importXML(xml);
      this.modeler.get('canvas').zoom('fit-viewport');
      $('modeler-source').textContent = source;
      this.dirty = false;
      this.status(warnings.length ? `${warnings.length} ${this.labels.warning}: ${warnings[0].message}` : '');
      return true;
    } catch (err) {
      this.status(`${this.labels.importFailed}: ${err.message}`, 'error');
      return false;
    }
  }

  async loadInitial() {
    this.status(this.labels.loading);
    const id = this.root.dataset.definitionId;
    if (id) {
      try {
        const xml = await fetchText(this.config.urls.definition.replace('{id}', encodeURIComponent(id)));
        if (await this.importXML(xml, `${this.labels.loadedDefinition} ${id}`)) {
          return;
        }
      } catch (err) {
        // Falls through to the shipped diagram, saying so.
      }
      await this.importXML(await fetchText(this.config.urls.bundled), this.labels.loadedBundled);
      this.status(this.labels.definitionMissing, 'warning');
      return;
    }
    await this.importXML(await fetchText(this.config.urls.bundled), this.labels.loadedBundled);
  }

  async saveXML() {
    const { xml } = await this.modeler.saveXML({ format: true });
    return xml;
  }

  bindToolbar() {
    $('modeler-file').addEventListener('change', (event) => {
      const file = event.target.files[0];
      if (!file) {
        return;
      }
      const reader = new FileReader();
      reader.onload = () => this.importXML(String(reader.result), `${this.labels.loadedFile}: ${file.name}`);
      reader.onerror = () => this.status(`${this.labels.importFailed}: ${file.name}`, 'error');
      reader.readAsText(file);
      event.target.value = '';
    });
    $('modeler-download').addEventListener('click', () => this.download());
    $('modeler-validate').addEventListener('click', () => this.validate());
    $('modeler-deploy').addEventListener('submit', (event) => {
      event.preventDefault();
      this.deploy();
    });
  }

  fillProvinces() {
    const select = $('deploy-province');
    for (const province of this.config.provinces) {
      const node = document.createElement('option');
      node.value = province.id === null ? '' : String(province.id);
      node.textContent = province.id === null ? this.labels.national : province.name;
      select.appendChild(node);
    }
  }

  fileName() {
    const name = ($('deploy-name').value || 'ocop_cycle').trim().replace(/[^\p{L}\p{N}._-]+/gu, '_');
    return name.endsWith('.bpmn') ? name : `${name}.bpmn`;
  }

  async download() {
    const xml = await this.saveXML();
    const url = URL.createObjectURL(new Blob([xml], { type: 'application/xml' }));
    const link = document.createElement('a');
    link.href = url;
    link.download = this.fileName();
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    this.dirty = false;
  }

  async validate() {
    this.status(this.labels.checking);
    this.clearProblems();
    const xml = await this.saveXML();
    try {
      const response = await fetch(this.config.urls.validate, {
        method: 'POST',
        credentials: 'same-origin',
        headers: {
          'Content-Type': 'application/xml',
          Accept: 'application/json',
          'X-CSRFToken': this.config.csrf_token
        },
        body: xml
      });
      const result = await readJson(response);
      this.showProblems(result.errors || [], result.warnings || []);
      const ok = result.ok && !(result.errors || []).length;
      this.status(ok ? this.labels.checkOk : this.labels.checkErrors, ok ? 'ok' : 'error');
      return result;
    } catch (err) {
      this.status(`${this.labels.requestFailed}: ${err.message}`, 'error');
      return null;
    }
  }

  async deploy() {
    this.status(this.labels.deploying);
    this.clearProblems();
    const xml = await this.saveXML();
    const form = new FormData();
    form.append('file', new Blob([xml], { type: 'application/xml' }), this.fileName());
    form.append('name', $('deploy-name').value.trim());
    form.append('message', $('deploy-message').value.trim());
    form.append('province_id', $('deploy-province').value);
    try {
      const response = await fetch(this.config.urls.deploy, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { Accept: 'application/json', 'X-CSRFToken': this.config.csrf_token },
        body: form
      });
      const result = await readJson(response);
      const errors = result.errors || [];
      this.showProblems(errors, result.warnings || []);
      if (response.ok && result.ok !== false && !errors.length) {
        const definition = result.definition || result;
        const what = [definition.name, definition.version && `v${definition.version}`,
          definition.id && `#${definition.id}`].filter(Boolean).join(' ');
        this.status(`${this.labels.deployed} ${what}`.trim(), 'ok');
        this.dirty = false;
      } else {
        const message = result.message || result.error || '';
        this.status(`${this.labels.deployRefused} ${message}`.trim(), 'error');
      }
      return result;
    } catch (err) {
      this.status(`${this.labels.requestFailed}: ${err.message}`, 'error');
      return null;
    }
  }

  clearProblems() {
    const canvas = this.modeler.get('canvas');
    for (const id of this.markers) {
      if (this.modeler.get('elementRegistry').get(id)) {
        canvas.removeMarker(id, PROBLEM_MARKER);
      }
    }
    this.markers = [];
    $('modeler-problems').replaceChildren();
  }

  showProblems(errors, warnings) {
    const list = $('modeler-problems');
    const all = [...errors.map((p) => [p, 'error']), ...warnings.map((p) => [p, 'warning'])];
    for (const [problem, kind] of all) {
      const item = document.createElement('li');
      item.className = kind;
      const text = typeof problem === 'string' ? problem : problem.message;
      // The element by id and, when it has one, the name the author gave it.
      const element = problem.element_name ? `${problem.element_id} "${problem.element_name}"` : problem.element_id;
      const where = [element, problem.line && `${this.labels.line} ${problem.line}`,
        problem.layer].filter(Boolean).join(', ');
      const label = `${kind === 'error' ? this.labels.error : this.labels.warning}: ${text}` +
        (where ? ` (${where})` : '');
      if (problem.element_id && this.modeler.get('elementRegistry').get(problem.element_id)) {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'link';
        button.dataset.elementId = problem.element_id;
        button.textContent = label;
        button.addEventListener('click', () => this.focus(problem.element_id));
        item.appendChild(button);
        this.mark(problem.element_id);
      } else {
        item.textContent = label;
      }
      list.appendChild(item);
    }
  }

  mark(id) {
    if (!this.markers.includes(id)) {
      this.modeler.get('canvas').addMarker(id, PROBLEM_MARKER);
      this.markers.push(id);
    }
  }

  focus(id) {
    const element = this.modeler.get('elementRegistry').get(id);
    if (!element) {
      return;
    }
    const canvas = this.modeler.get('canvas');
    try {
      canvas.scrollToElement(element);
    } catch (err) {
      // Not every element has a box to scroll to; selecting still shows it.
    }
    this.modeler.get('selection').select(element);
  }
}

async function start() {
  const root = $('modeler');
  if (!root) {
    return;
  }
  const response = await fetch(root.dataset.configUrl, { credentials: 'same-origin' });
  const config = await response.json();
  const page = new ModelerPage(root, config);
  // For tests and the console: the modeler and a few helpers.
  window.ocopModeler = {
    modeler: page.modeler,
    saveXML: () => page.saveXML(),
    importXML: (xml) => page.importXML(xml, ''),
    select: (id) => page.focus(id),
    validate: () => page.validate(),
    deploy: () => page.deploy(),
    ready: false
  };
  await page.loadInitial();
  window.ocopModeler.ready = true;
  root.dataset.ready = 'true';
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', start);
} else {
  start();
}
