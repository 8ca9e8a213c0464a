// The viewer's pages, chosen by the location hash:
//   #/                        the data sets (the IIIF Presentation collection)
//   #/{data set}              its sections as thumbnails (the data set's manifest)
//   #/{data set}/{image}?...  one section, deep zoom (section.js); the parameters restore the view
// Every URL is relative to this page (../iiif/...), so the viewer works under a proxy's root path.

import { formatHash, getJson, h, parseHash } from "./dom.js";
import { dataSets, readManifest } from "./iiif.js";
import { SectionView } from "./section.js";

const API = new URL("../", location.href);
const COLLECTION = new URL("iiif/presentation/3/collection", API).href;
const page = document.getElementById("page");
const crumbs = document.getElementById("crumbs");
const manifests = new Map();
let current = null; // the SectionView on screen
let generation = 0; // which route() call is the latest

window.tierserveViewer = { view: null, timings: {} };

function manifestUrl(dataSetId) {
  return new URL(`iiif/presentation/3/manifest/${encodeURIComponent(dataSetId)}`, API).href;
}

/** The data set's manifest, read once per page load. */
function loadDataSet(dataSetId) {
  if (!manifests.has(dataSetId)) {
    const promise = getJson(manifestUrl(dataSetId)).then(readManifest);
    promise.catch(() => manifests.delete(dataSetId));
    manifests.set(dataSetId, promise);
  }
  return manifests.get(dataSetId);
}

function setCrumbs(...items) {
  crumbs.replaceChildren(
    ...items.flatMap((item, index) => [
      ...(index ? [h("span", { class: "sep", "aria-hidden": "true" }, "/")] : []),
      item.href ? h("a", { href: item.href }, item.label) : h("span", { "aria-current": "page" }, item.label),
    ]),
  );
  document.title = [...items.map((item) => item.label).reverse(), "tierserve viewer"].join(" · ");
}

function showError(error) {
  page.replaceChildren(h("p", { class: "error", role: "alert" }, error.message || String(error)));
}

async function showDataSets(isLatest) {
  setCrumbs({ label: "Data sets" });
  const collection = await getJson(COLLECTION);
  if (!isLatest()) return;
  const items = dataSets(collection);
  page.replaceChildren(
    h(
      "section",
      { class: "listing" },
      h("h1", {}, "Data sets"),
      items.length
        ? h(
            "ul",
            { class: "data-sets" },
            items.map((item) =>
              h("li", {}, h("a", { href: formatHash([item.id]) }, h("span", { class: "name" }, item.label), h("span", { class: "id" }, `id ${item.id}`))),
            ),
          )
        : h("p", { class: "note" }, "No images are ingested yet: run tierserve ingest MANIFEST or tierserve demo."),
    ),
  );
}

async function showDataSet(dataSetId, isLatest) {
  setCrumbs({ label: "Data sets", href: "#/" }, { label: `Data set ${dataSetId}` });
  const dataSet = await loadDataSet(dataSetId);
  if (!isLatest()) return;
  setCrumbs({ label: "Data sets", href: "#/" }, { label: dataSet.label || `Data set ${dataSetId}` });
  const facts = [dataSet.model, `${dataSet.sections.length} section${dataSet.sections.length === 1 ? "" : "s"}`];
  if (dataSet.metadata.equalization) facts.push(`equalization ${dataSet.metadata.equalization}`);
  page.replaceChildren(
    h(
      "section",
      { class: "listing" },
      h("h1", {}, dataSet.label, " ", h("small", {}, `id ${dataSet.id}`)),
      h("p", { class: "facts" }, facts.join(" · ")),
      h(
        "ul",
        { class: "thumbnails" },
        dataSet.sections.map((section) =>
          h(
            "li",
            {},
            h(
              "a",
              { href: formatHash([dataSetId, section.id]), title: `${section.label} (image ${section.id})` },
              h("span", { class: "frame" }, section.thumbnail ? h("img", { src: section.thumbnail, alt: section.label, loading: "lazy" }) : null),
              h("span", { class: "caption" }, section.label, h("small", {}, `id ${section.id}`)),
            ),
          ),
        ),
      ),
    ),
  );
}

async function showSection(dataSetId, imageId, params, isLatest) {
  const dataSet = await loadDataSet(dataSetId);
  if (!isLatest()) return;
  const index = dataSet.sections.findIndex((section) => section.id === imageId);
  if (index < 0) throw new Error(`data set ${dataSetId} has no image ${imageId}`);
  const section = dataSet.sections[index];
  setCrumbs(
    { label: "Data sets", href: "#/" },
    { label: dataSet.label || `Data set ${dataSetId}`, href: formatHash([dataSetId]) },
    { label: section.label },
  );
  current = new SectionView(page, { dataSet, index, params, hashOf: (path, p) => formatHash(path, p) });
  window.tierserveViewer.view = current;
  await current.start();
}

async function route() {
  const latest = ++generation;
  const isLatest = () => latest === generation;
  if (current) {
    current.destroy();
    current = null;
    window.tierserveViewer.view = null;
  }
  const { path, params } = parseHash(location.hash);
  page.classList.toggle("full", path.length >= 2);
  try {
    if (path.length === 0) await showDataSets(isLatest);
    else if (path.length === 1) await showDataSet(path[0], isLatest);
    else await showSection(path[0], path[1], params, isLatest);
  } catch (error) {
    if (isLatest()) showError(error);
  }
}

window.addEventListener("hashchange", route);
route();
