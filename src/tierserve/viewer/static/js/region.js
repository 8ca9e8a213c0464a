// The rectangle tool's arithmetic: which stored tier, what an Allen download URL returns, and the
// URL and AllenSDK call for it (docs/api.md, "Geometry"). Pure functions, no DOM.
//
// Coordinates: a selection is in section pixels (IIIF pixels: (0, 0) is the section's top-left
// corner); Allen's `left`/`top` are full-resolution pixels of the stored scan, i.e. section pixels
// plus the SubImage's (x, y); `width`/`height` are tier pixels. The response starts at tier pixel
// (floor(left / s), floor(top / s)) with s = 2^downsample and is clipped to the tier
// (floor(image_width / s) x floor(image_height / s)).

/**
 * The stored tier at least as dense as the screen: the largest d with 2^d <= image pixels per device
 * pixel, at most `maxLevel` (the last stored level), at least 0.
 */
export function screenTier(imagePixelsPerDevicePixel, maxLevel) {
  if (!(imagePixelsPerDevicePixel >= 2)) return 0;
  const d = Math.floor(Math.log2(imagePixelsPerDevicePixel) + 1e-9);
  return Math.max(0, Math.min(maxLevel, d));
}

/**
 * The Allen parameters that cover `selection` ({left, top, width, height}, integers, section pixels)
 * at `downsample`, for a section placed at (x, y) in a scan of imageWidth x imageHeight pixels, and
 * the region that URL returns: `returned` in full-resolution scan pixels, `output` its size in tier
 * pixels. A tier that leaves nothing of the selection (its last partial block) moves to a finer one.
 */
export function allenRegion(selection, section, downsample) {
  for (let d = downsample; d >= 0; d -= 1) {
    const s = 2 ** d;
    const left = section.x + selection.left;
    const top = section.y + selection.top;
    const column = Math.floor(left / s);
    const row = Math.floor(top / s);
    const width = Math.ceil((left + selection.width) / s) - column;
    const height = Math.ceil((top + selection.height) / s) - row;
    const outWidth = Math.min(column + width, Math.floor(section.imageWidth / s)) - column;
    const outHeight = Math.min(row + height, Math.floor(section.imageHeight / s)) - row;
    if (outWidth > 0 && outHeight > 0) {
      return {
        downsample: d,
        left,
        top,
        width,
        height,
        output: { width: outWidth, height: outHeight },
        returned: { left: column * s, top: row * s, width: outWidth * s, height: outHeight * s },
      };
    }
  }
  throw new Error("the selection has no pixel inside the image");
}

/** The Allen options of a layer: [name, value, python] triples (python: the AllenSDK keyword value). */
function layerOptions(layerKey) {
  if (!layerKey || layerKey === "primary") return [];
  const annotation = /^annotation-(\d+)$/.exec(layerKey);
  if (annotation) return [["annotation", "true", "True"], ["atlas", annotation[1], annotation[1]]];
  return [["view", layerKey, JSON.stringify(layerKey)]];
}

/**
 * The options of a download, in the order AllenSDK's ImageDownloadApi.download_image writes them
 * (downsample, annotation, atlas, colormap, range, view, left, top, width, height), so the URL shown
 * is the URL the snippet requests.
 */
export function downloadOptions(region, layerKey, display = {}) {
  const layer = layerOptions(layerKey);
  const pick = (name) => layer.filter((option) => option[0] === name);
  const options = [["downsample", String(region.downsample), String(region.downsample)]];
  options.push(...pick("annotation"), ...pick("atlas"));
  if (display.colormap) options.push(["colormap", display.colormap, JSON.stringify(display.colormap)]);
  if (display.range) options.push(["range", display.range.join(","), `[${display.range.join(", ")}]`]);
  options.push(...pick("view"));
  for (const name of ["left", "top", "width", "height"]) options.push([name, String(region[name]), String(region[name])]);
  return options;
}

/** The Allen download URL: `endpoint` (e.g. .../api/v2/section_image_download/2001) and the options. */
export function downloadUrl(endpoint, options) {
  return `${endpoint}?${options.map(([name, value]) => `${name}=${value}`).join("&")}`;
}

/** The server's base URL (what AllenSDK calls base_uri) of a download endpoint URL. */
export function baseUri(endpoint) {
  const at = endpoint.indexOf("/api/v2/");
  return at < 0 ? new URL("/", endpoint).href.replace(/\/$/, "") : endpoint.slice(0, at);
}

/** The AllenSDK method of a download endpoint. */
export function sdkMethod(endpoint) {
  if (endpoint.includes("/atlas_image_download/")) return "download_atlas_image";
  if (endpoint.includes("/projection_image_download/")) return "download_projection_image";
  if (endpoint.includes("/section_image_download/")) return "download_section_image";
  return "download_image";
}

/** A file name for a download: `{image}_{layer}_{left}_{top}_d{downsample}.jpg`. */
export function fileName(imageId, layerKey, region) {
  const layer = layerKey && layerKey !== "primary" ? `_${layerKey}` : "";
  return `${imageId}${layer}_${region.left}_${region.top}_d${region.downsample}.jpg`;
}

/**
 * A ready AllenSDK script downloading each of `downloads` ({imageId, endpoint, options, file}):
 * ImageDownloadApi(base_uri=...) and one download_*_image call each.
 */
export function allenSdkSnippet(downloads) {
  const base = baseUri(downloads[0].endpoint);
  const lines = [
    "from allensdk.api.queries.image_download_api import ImageDownloadApi",
    "",
    `api = ImageDownloadApi(base_uri=${JSON.stringify(base)})`,
  ];
  for (const download of downloads) {
    lines.push(`api.${sdkMethod(download.endpoint)}(`);
    lines.push(`    ${download.imageId},`);
    lines.push(`    file_path=${JSON.stringify(download.file)},`);
    for (const [name, , python] of download.options) lines.push(`    ${name}=${python},`);
    lines.push(")");
  }
  return `${lines.join("\n")}\n`;
}
