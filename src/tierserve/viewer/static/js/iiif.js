// What the viewer reads from tierserve's IIIF Presentation 3 documents (docs/iiif.md): data sets from
// the collection, sections (canvases) and their layers from a manifest, the Allen fields from the
// `metadata` pairs the manifests carry.

/** The first string of a IIIF language map ({"none": ["..."]} or {"en": [...]}). */
export function text(languageMap, fallback = "") {
  if (!languageMap) return fallback;
  for (const key of ["none", "en", ...Object.keys(languageMap)]) {
    const values = languageMap[key];
    if (values && values.length) return values.join(" ");
  }
  return fallback;
}

/** The metadata pairs as a plain object, label -> value (labels are the Allen field names). */
export function fields(metadata) {
  const out = {};
  for (const pair of metadata || []) out[text(pair.label)] = text(pair.value);
  return out;
}

/** The last path segment of a URL, decoded. */
export function lastSegment(url) {
  const path = new URL(url, location.href).pathname.replace(/\/+$/, "");
  return decodeURIComponent(path.slice(path.lastIndexOf("/") + 1));
}

/** The data sets of a Collection: {id, label, manifest}. */
export function dataSets(collection) {
  return (collection.items || [])
    .filter((item) => item.type === "Manifest")
    .map((item) => ({ id: lastSegment(item.id), label: text(item.label, lastSegment(item.id)), manifest: item.id }));
}

/** `red 0-923, green 0-987, blue 0-4095` -> [[0, 923], [0, 987], [0, 4095]] (null when absent). */
export function parseEqualization(value) {
  if (!value) return null;
  const pairs = [...value.matchAll(/(\d+)-(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  return pairs.length === 3 ? pairs : null;
}

/** The layer key of an Image API service id: `primary` for `{id}`, `expression` for `{id}~expression`. */
export function layerKey(serviceId) {
  const identifier = lastSegment(serviceId);
  const tilde = identifier.indexOf("~");
  return tilde < 0 ? "primary" : identifier.slice(tilde + 1);
}

function serviceId(resource) {
  const services = resource.service || [];
  const service = services.find((s) => s.type === "ImageService3" || s.type === "ImageService2") || services[0];
  return service ? service.id || service["@id"] : null;
}

/** A data set's manifest as what the viewer needs: its fields and one entry per section. */
export function readManifest(manifest) {
  const info = fields(manifest.metadata);
  const sections = (manifest.items || []).map((canvas, index) => {
    const meta = fields(canvas.metadata);
    const annotation = canvas.items?.[0]?.items?.[0];
    const body = annotation?.body || {};
    const images = body.type === "Choice" ? body.items : [body];
    const layers = images
      .map((image) => ({ service: serviceId(image), label: text(image.label) }))
      .filter((layer) => layer.service)
      .map((layer) => ({ ...layer, key: layerKey(layer.service) }));
    const number = (name, fallback) => (meta[name] === undefined ? fallback : Number.parseFloat(meta[name]));
    return {
      index,
      id: meta.id || lastSegment(canvas.id),
      label: text(canvas.label, `Section ${index + 1}`),
      model: meta.type || "SectionImage",
      sectionNumber: number("section_number", index + 1),
      width: canvas.width,
      height: canvas.height,
      x: number("x", 0),
      y: number("y", 0),
      imageWidth: number("image_width", canvas.width),
      imageHeight: number("image_height", canvas.height),
      bits: number("bits_per_component", 8),
      components: number("number_of_components", 3),
      resolution: meta.resolution || null,
      thumbnail: canvas.thumbnail?.[0]?.id || null,
      download: canvas.rendering?.[0]?.id || null,
      primary: layers.find((layer) => layer.key === "primary") || layers[0],
      overlays: layers.filter((layer) => layer.key !== "primary"),
      metadata: meta,
    };
  });
  return {
    id: info.id || lastSegment(manifest.id),
    label: text(manifest.label),
    model: info.type || "SectionDataSet",
    equalization: parseEqualization(info.equalization),
    metadata: info,
    sections,
  };
}
