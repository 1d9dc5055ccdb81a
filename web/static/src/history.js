// The auditor's history page (/audit/instances/<id>): the instance's diagram
// in the bpmn-js NavigatedViewer, and a slider (plus step buttons and the
// timeline's "#n" buttons) that moves through the recorded events. At each
// point the diagram shows the elements completed and how often, the flows
// taken and how often, the tasks waiting and who holds them, and who
// completed each user task.
//
// The frames come from frames.json (engine/timeline.py: one delta per
// event), the diagram from diagram.bpmn, the labels from data-l-*: nothing
// inline (CSP).
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';

const OVERLAY = 'ocop-history';
const MARKERS = ['history-done', 'history-active', 'history-flow'];

async function fetchOk(url, as) {
  const response = await fetch(url, { credentials: 'same-origin' });
  if (!response.ok) {
    throw new Error(`${url}: HTTP ${response.status}`);
  }
  return as === 'json' ? response.json() : response.text();
}

// Full states from the deltas: states[i] is the diagram after event i.
function accumulate(frames) {
  const states = [];
  let done = {};
  let flows = {};
  let acted = {};
  let active = [];
  for (const frame of frames) {
    if (frame.done) done = { ...done, ...frame.done };
    if (frame.flows) flows = { ...flows, ...frame.flows };
    if (frame.acted) acted = { ...acted, ...frame.acted };
    if (frame.active) active = frame.active;
    states.push({ seq: frame.seq, kind: frame.kind, done, flows, acted, active });
  }
  return states;
}

function badge(text, className) {
  const node = document.createElement('span');
  node.className = className;
  node.textContent = text;
  return node;
}

// Where an overlay sits on a connection: the middle of its middle segment,
// relative to the connection's bounding box (how overlays are positioned).
function middleOf(connection) {
  const points = connection.waypoints || [];
  if (points.length < 2) {
    return { left: 0, top: 0 };
  }
  const at = Math.floor((points.length - 1) / 2);
  const [a, b] = [points[at], points[at + 1]];
  const minX = Math.min(...points.map((p) => p.x));
  const minY = Math.min(...points.map((p) => p.y));
  return { left: (a.x + b.x) / 2 - minX - 10, top: (a.y + b.y) / 2 - minY - 10 };
}

class HistoryView {
  constructor(root, viewer, data) {
    this.root = root;
    this.viewer = viewer;
    this.users = data.users || {};
    this.states = accumulate(data.frames);
    this.registry = viewer.get('elementRegistry');
    this.canvas = viewer.get('canvas');
    this.overlays = viewer.get('overlays');
    this.marked = [];
    this.slider = document.getElementById('history-slider');
    this.status = document.getElementById('history-status');
    this.rows = new Map();
    for (const row of document.querySelectorAll('.audit-event[data-seq]')) {
      this.rows.set(Number(row.dataset.seq), row);
    }
  }

  name(userId) {
    return this.users[String(userId)] || `#${userId}`;
  }

  mark(id, marker) {
    if (this.registry.get(id)) {
      this.canvas.addMarker(id, marker);
      this.marked.push([id, marker]);
      return true;
    }
    return false;
  }

  clear() {
    for (const [id, marker] of this.marked) {
      this.canvas.removeMarker(id, marker);
    }
    this.marked = [];
    this.overlays.remove({ type: OVERLAY });
  }

  // Overlays never shrink below their own size, so counts and names stay
  // legible over a zoomed-out diagram; `minZoom` hides the busier ones there.
  overlay(id, position, node, minZoom) {
    const options = { position, html: node, scale: { min: 1 } };
    if (minZoom) {
      options.show = { minZoom };
    }
    this.overlays.add(id, OVERLAY, options);
  }

  zoom(factor) {
    if (factor) {
      this.canvas.zoom(this.canvas.zoom() * factor, 'auto');
    } else {
      this.fit(this.processId, this.container);
    }
  }

  show(index) {
    const state = this.states[index];
    if (!state) {
      return;
    }
    this.clear();
    for (const [id, count] of Object.entries(state.done)) {
      if (this.mark(id, 'history-done') && count > 1) {
        this.overlay(id, { top: -12, right: 12 }, badge(`${count}×`, 'history-count'));
      }
    }
    for (const [id, count] of Object.entries(state.flows)) {
      if (this.mark(id, 'history-flow') && count > 1) {
        this.overlay(id, middleOf(this.registry.get(id)), badge(`${count}×`, 'history-count flow'));
      }
    }
    for (const [id, people] of Object.entries(state.acted)) {
      if (this.registry.get(id) && people.length) {
        this.overlay(id, { bottom: -4, left: 0 },
          badge(people.map((p) => this.name(p)).join(', '), 'history-people'), 0.4);
      }
    }
    for (const [id, holder] of state.active) {
      if (this.mark(id, 'history-active')) {
        const who = holder == null ? this.root.dataset.lUnclaimed : this.name(holder);
        this.overlay(id, { top: -12, left: 0 }, badge(who, 'history-holder'));
      }
    }
    this.slider.value = String(index + 1);
    this.highlight(state.seq);
    this.follow(state);
    this.root.dataset.seq = String(state.seq);
  }

  // Keep what the event touched in sight: its element (or else a task
  // now waiting), when it lies outside the visible part of the diagram.
  follow(state) {
    const row = this.rows.get(state.seq);
    const candidates = [row && row.dataset.element, ...state.active.map(([id]) => id)];
    const target = candidates.map((id) => id && this.registry.get(id)).find(Boolean);
    if (!target || target.waypoints) {
      return;
    }
    const box = this.canvas.viewbox();
    const inside = target.x >= box.x && target.y >= box.y
      && target.x + target.width <= box.x + box.width && target.y + target.height <= box.y + box.height;
    if (!inside) {
      this.canvas.scrollToElement(target);
    }
  }

  // The instance's own pool (a file holds the outreach process too), or
  // everything; the canvas takes the pool's proportions (within limits) so
  // a wide diagram leaves no empty band below it.
  fit(processId, container) {
    this.processId = processId;
    this.container = container;
    const pool = this.registry.filter((element) => element.type === 'bpmn:Participant'
      && element.businessObject.processRef && element.businessObject.processRef.id === processId)[0];
    const margin = 20;
    const box = pool
      ? { x: pool.x - margin, y: pool.y - margin, width: pool.width + 2 * margin, height: pool.height + 2 * margin }
      : this.canvas.getRootElement() && this.canvas.viewbox().inner;
    if (box && box.width > 0) {
      // Tall enough to be worth zooming into, no taller than the window.
      const wanted = Math.max(container.clientWidth * (box.height / box.width), window.innerHeight * 0.55);
      const limit = window.innerHeight - 160;
      container.style.height = `${Math.round(Math.max(240, Math.min(wanted, limit)))}px`;
      this.canvas.resized();
      this.canvas.viewbox(box);
    } else {
      this.canvas.zoom('fit-viewport');
    }
  }

  // The timeline row of this event (or the nearest shown one before it).
  highlight(seq) {
    let row = null;
    for (const [rowSeq, candidate] of this.rows) {
      candidate.classList.remove('current');
      candidate.removeAttribute('aria-current');
      if (rowSeq <= seq && !candidate.hidden) {
        row = candidate;
      }
    }
    const exact = this.rows.get(seq);
    const label = exact ? exact.querySelector('.event-label') : null;
    const text = label ? label.textContent.trim().replace(/\s+/g, ' ') : '';
    const position = this.root.dataset.lPosition
      .replace('{n}', String(seq)).replace('{total}', String(this.states.length));
    this.status.value = text ? `${position}: ${text}` : position;
    this.slider.setAttribute('aria-valuetext', this.status.value);
    if (row) {
      row.classList.add('current');
      row.setAttribute('aria-current', 'step');
      // Scroll the timeline panel only (never the page) to the row.
      const panel = row.closest('.audit-timeline');
      if (panel && panel.scrollHeight > panel.clientHeight) {
        const top = row.offsetTop; // the panel is the row's offset parent (position: relative)
        if (top < panel.scrollTop || top + row.offsetHeight > panel.scrollTop + panel.clientHeight) {
          panel.scrollTop = Math.max(0, top - panel.clientHeight / 3);
        }
      }
    }
  }

  indexOfSeq(seq) {
    const found = this.states.findIndex((state) => state.seq === seq);
    return found < 0 ? this.states.length - 1 : found;
  }

  go(index) {
    this.show(Math.max(0, Math.min(this.states.length - 1, index)));
  }

  current() {
    return Number(this.slider.value) - 1;
  }

  bind() {
    this.slider.max = String(this.states.length);
    this.slider.addEventListener('input', () => this.go(this.current()));
    document.getElementById('history-prev').addEventListener('click', () => this.go(this.current() - 1));
    document.getElementById('history-next').addEventListener('click', () => this.go(this.current() + 1));
    document.getElementById('history-first').addEventListener('click', () => this.go(0));
    document.getElementById('history-last').addEventListener('click', () => this.go(this.states.length - 1));
    document.getElementById('history-zoom-in').addEventListener('click', () => this.zoom(1.5));
    document.getElementById('history-zoom-out').addEventListener('click', () => this.zoom(1 / 1.5));
    document.getElementById('history-zoom-fit').addEventListener('click', () => this.zoom(0));
    for (const button of document.querySelectorAll('.history-goto')) {
      button.hidden = false;
      const plain = button.parentElement.querySelector('.event-seq');
      if (plain) plain.hidden = true;
      button.addEventListener('click', () => {
        this.go(this.indexOfSeq(Number(button.dataset.seq)));
        this.slider.focus();
      });
    }
    this.root.querySelector('.history-controls').hidden = false;
  }
}

async function main() {
  const root = document.getElementById('history-viewer');
  if (!root) {
    return;
  }
  try {
    const [data, xml] = await Promise.all([
      fetchOk(root.dataset.framesUrl, 'json'), fetchOk(root.dataset.diagramUrl)]);
    const viewer = new NavigatedViewer({ container: document.getElementById('history-canvas') });
    await viewer.importXML(xml);
    const view = new HistoryView(root, viewer, data);
    view.fit(data.process_id, document.getElementById('history-canvas'));
    view.bind();
    view.go(view.states.length - 1);
    window.ocopHistory = view; // for the browser tests and the console
    root.dataset.ready = '1';
  } catch (err) {
    const message = document.createElement('p');
    message.className = 'flash error';
    message.textContent = `${root.dataset.lFailed}: ${err.message}`;
    root.prepend(message);
  }
}

document.addEventListener('DOMContentLoaded', main);
