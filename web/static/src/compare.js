// The version comparison page (/definitions/compare): both diagrams in the
// bpmn-js NavigatedViewer, side by side, with the added, removed and changed
// elements marked. The differences come from /definitions/compare.json (the
// page's data-compare-url), the labels from data-l-*: nothing inline (CSP).
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';

async function fetchOk(url, as) {
  const response = await fetch(url, { credentials: 'same-origin' });
  if (!response.ok) {
    throw new Error(`${url}: HTTP ${response.status}`);
  }
  return as === 'json' ? response.json() : response.text();
}

function mark(viewer, elements, marker) {
  const registry = viewer.get('elementRegistry');
  const canvas = viewer.get('canvas');
  for (const element of elements) {
    if (registry.get(element.id)) {
      canvas.addMarker(element.id, marker);
    }
  }
}

async function show(container, xml, marks) {
  const viewer = new NavigatedViewer({ container });
  await viewer.importXML(xml);
  viewer.get('canvas').zoom('fit-viewport');
  for (const [elements, marker] of marks) {
    mark(viewer, elements, marker);
  }
  return viewer;
}

async function main() {
  const root = document.getElementById('compare-viewer');
  if (!root) {
    return;
  }
  try {
    const diff = await fetchOk(root.dataset.compareUrl, 'json');
    const [xmlA, xmlB] = await Promise.all([fetchOk(diff.a.url), fetchOk(diff.b.url)]);
    await show(document.getElementById('compare-a'), xmlA,
      [[diff.removed, 'diff-removed'], [diff.changed, 'diff-changed']]);
    await show(document.getElementById('compare-b'), xmlB,
      [[diff.added, 'diff-added'], [diff.changed, 'diff-changed']]);
    root.dataset.ready = '1';
  } catch (err) {
    const message = document.createElement('p');
    message.className = 'flash error';
    message.textContent = `${root.dataset.lFailed}: ${err.message}`;
    root.prepend(message);
  }
}

document.addEventListener('DOMContentLoaded', main);
