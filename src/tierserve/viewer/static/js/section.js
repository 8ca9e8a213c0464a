// One section in deep zoom: OpenSeadragon over tierserve's IIIF Image API, with
// - the layers (expression, projection, annotation, ...) as overlays, each with an opacity slider;
// - for images deeper than 8 bits, per-channel window sliders, and for every image a colormap: the
//   Allen `range` and `colormap` options, appended to every tile URL (docs/api.md, "Display filters");
// - previous / next section;
// - the rectangle tool: the Allen download URL of the selected region at the stored tier at least as
//   dense as the screen, the rectangle that URL returns, and an AllenSDK script (region.js);
// - the view (zoom, centre, layers, display, region) kept in the location hash, so the URL restores it.

import { h } from "./dom.js";
import { allenRegion, allenSdkSnippet, downloadOptions, downloadUrl, fileName, screenTier } from "./region.js";

const OSD = window.OpenSeadragon;
const PALETTES = ["gray", "hotmetal", "jet", "redtemp", "expression", "red", "blue", "green", "aba", "aibsmap_alt", "colormap", "projection"];
const CHANNELS = ["Red", "Green", "Blue"];
const DEFAULT_OPACITY = 0.6;
// How an overlay is drawn over what is below it: canvas composite operations. "screen" leaves what is
// under a black pixel as it is (masks and fluorescence on a black background).
const BLENDS = { normal: "source-over", screen: "screen" };
const DISPLAY_DELAY_MS = 250; // sliders redraw this long after the last move

/** An OpenSeadragon IIIF tile source of `info` whose tile URLs end with `?query` (when given). */
function tileSource(info, query) {
  const options = OSD.IIIFTileSource.prototype.configure(structuredClone(info), `${info.id || info["@id"]}/info.json`);
  const source = new OSD.IIIFTileSource(options);
  if (query) {
    const plain = source.getTileUrl;
    source.getTileUrl = function tileUrl(level, x, y) {
      return `${plain.call(this, level, x, y)}?${query}`;
    };
  }
  return source;
}

function numbers(text, count) {
  if (!text) return null;
  const values = text.split(",").map(Number);
  return values.length === count && values.every(Number.isFinite) ? values : null;
}

function round(value, digits) {
  return Number(value.toPrecision(digits)).toString();
}

/** A shown layer in the hash: `key:opacity`, and `:screen` when so blended. */
function layerToken(key, overlay) {
  return `${key}:${round(overlay.opacity, 3)}${overlay.blend === "normal" ? "" : `:${overlay.blend}`}`;
}

export class SectionView {
  constructor(root, { dataSet, index, params, hashOf }) {
    this.root = root;
    this.dataSet = dataSet;
    this.index = index;
    this.section = dataSet.sections[index];
    this.params = params;
    this.hashOf = hashOf;
    this.infos = new Map(); // service -> info.json promise
    this.overlays = new Map(); // layer key -> {layer, checkbox, slider, item, loading, opacity}
    this.primary = null; // the primary layer's TiledImage on screen
    this.pending = null; // a primary TiledImage with new display options, until it is fully loaded
    this.selection = null; // {left, top, width, height} in section pixels
    this.selecting = false;
    this.dragStart = null;
    this.animating = false;
    this.destroyed = false;
    this.started = performance.now();
    this.timings = {};
    this.errors = [];
    this.initDisplay();
  }

  // ---- display options (range, colormap) ----

  initDisplay() {
    const section = this.section;
    this.deep = section.bits > 8;
    this.maxValue = 2 ** section.bits - 1;
    const full = [0, this.maxValue];
    this.defaultWindow = this.deep && this.dataSet.equalization ? this.dataSet.equalization.map((pair) => [...pair]) : [full, full, full].map((pair) => [...pair]);
    const range = this.deep ? numbers(this.params.get("range"), 6) : null;
    this.window = range ? [0, 2, 4].map((i) => [range[i], range[i + 1]]) : this.defaultWindow.map((pair) => [...pair]);
    const colormap = this.params.get("colormap");
    this.colormap = PALETTES.includes(colormap) ? colormap : "";
  }

  /** The display options in effect: `range` (six integers) unless the default window, `colormap`. */
  displayOptions() {
    const changed = this.window.some((pair, c) => pair[0] !== this.defaultWindow[c][0] || pair[1] !== this.defaultWindow[c][1]);
    return { range: this.deep && changed ? this.window.flat() : null, colormap: this.colormap || null };
  }

  tileQuery() {
    const display = this.displayOptions();
    const parts = [];
    if (display.range) parts.push(`range=${display.range.join(",")}`);
    if (display.colormap) parts.push(`colormap=${display.colormap}`);
    return parts.join("&");
  }

  // ---- start and stop ----

  async start() {
    this.render();
    this.viewer = OSD({
      element: this.osdElement,
      showNavigationControl: false, // the page has its own controls (no button images to load)
      showNavigator: true,
      navigatorPosition: "BOTTOM_RIGHT",
      navigatorAutoFade: false,
      drawer: "canvas",
      maxZoomPixelRatio: 8,
      minZoomImageRatio: 0.5,
      visibilityRatio: 0.3,
      animationTime: 0.5,
      preserveImageSizeOnResize: true,
      gestureSettingsMouse: { clickToZoom: false },
    });
    this.hookViewer();
    this.setStatus("Loading tiles…");
    const item = await this.addImage(this.section.primary, { query: this.tileQuery() });
    if (this.destroyed) return;
    const info = await this.info(this.section.primary);
    const factors = (info.tiles || []).flatMap((tiles) => tiles.scaleFactors || []);
    this.storedLevels = factors.length ? Math.round(Math.log2(Math.max(...factors))) : 0;
    this.primaryQuery = this.tileQuery();
    this.adoptPrimary(item);
    this.restoreViewport();
    const layers = (this.params.get("layers") || "").split(",").filter(Boolean);
    for (const entry of layers) {
      const [key, opacity, blend] = entry.split(":");
      const overlay = this.overlays.get(key);
      if (!overlay) continue;
      const value = Number(opacity);
      overlay.opacity = Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : DEFAULT_OPACITY;
      overlay.slider.value = String(Math.round(overlay.opacity * 100));
      overlay.blend = blend in BLENDS ? blend : "normal";
      overlay.blendSelect.value = overlay.blend;
      overlay.checkbox.checked = true;
      this.showOverlay(key);
    }
    const region = numbers(this.params.get("region"), 4);
    if (region) this.setSelection(this.clampSelection(region[0], region[1], region[0] + region[2], region[1] + region[3]));
    this.ready = true;
    this.writeHash();
  }

  destroy() {
    this.destroyed = true;
    clearTimeout(this.displayTimer);
    document.removeEventListener("keydown", this.onKey);
    if (this.viewer) this.viewer.destroy();
    this.viewer = null;
    this.root.replaceChildren();
  }

  /** Whether everything on screen is drawn: each image fully loaded, no swap or animation under way. */
  isSettled() {
    if (!this.ready || !this.viewer || this.pending || this.animating) return false;
    if ([...this.overlays.values()].some((overlay) => overlay.loading)) return false;
    const world = this.viewer.world;
    for (let i = 0; i < world.getItemCount(); i += 1) if (!world.getItemAt(i).getFullyLoaded()) return false;
    return true;
  }

  // ---- images ----

  info(layer) {
    if (!this.infos.has(layer.service)) {
      const promise = fetch(`${layer.service}/info.json`, { headers: { Accept: "application/ld+json" } }).then(async (response) => {
        if (!response.ok) throw new Error(`${layer.service}/info.json: ${response.status} ${await response.text()}`);
        return response.json();
      });
      promise.catch(() => this.infos.delete(layer.service));
      this.infos.set(layer.service, promise);
    }
    return this.infos.get(layer.service);
  }

  async addImage(layer, { index, query = "", opacity = 1, blend = "normal" } = {}) {
    const info = await this.info(layer);
    if (this.destroyed) throw new Error("closed");
    return new Promise((resolve, reject) => {
      this.viewer.addTiledImage({
        tileSource: tileSource(info, query),
        index,
        opacity,
        compositeOperation: BLENDS[blend],
        success: (event) => resolve(event.item),
        error: (event) => reject(new Error(`${layer.service}: ${event.message}`)),
      });
    });
  }

  adoptPrimary(item) {
    this.primary = item;
    const record = (event) => {
      if (event.fullyLoaded && item === this.primary && this.timings.firstScreen === undefined) {
        this.timings.firstScreen = performance.now() - this.started;
        this.timings.firstScreenSinceNavigation = performance.now();
        window.tierserveViewer.timings = this.timings;
        this.setStatus(`First screen of tiles drawn in ${Math.round(this.timings.firstScreen)} ms`);
      }
    };
    item.addHandler("fully-loaded-change", record);
    if (item.getFullyLoaded()) record({ fullyLoaded: true });
  }

  /** Show the primary layer with the current display options: a new image above the old one, which
   * goes once the new one is fully drawn (no blank screen while tiles load). */
  async applyDisplay() {
    const query = this.tileQuery();
    this.writeHash();
    this.updateRegion();
    if (!this.primary || query === this.primaryQuery) return;
    this.primaryQuery = query;
    const world = this.viewer.world;
    if (this.pending) world.removeItem(this.pending);
    const token = (this.pending = {});
    let item;
    try {
      item = await this.addImage(this.section.primary, { index: world.getIndexOfItem(this.primary) + 1, query });
    } catch (error) {
      this.fail(error);
      if (this.pending === token) this.pending = null;
      return;
    }
    if (this.destroyed) return;
    if (this.pending !== token) {
      world.removeItem(item);
      return;
    }
    this.pending = item;
    const finish = () => {
      if (this.pending !== item) return;
      const old = this.primary;
      this.pending = null;
      this.adoptPrimary(item);
      world.removeItem(old);
    };
    if (item.getFullyLoaded()) finish();
    else item.addHandler("fully-loaded-change", (event) => event.fullyLoaded && finish());
  }

  showOverlay(key) {
    const overlay = this.overlays.get(key);
    if (overlay.item || overlay.loading) return;
    overlay.loading = this.addImage(overlay.layer, { opacity: overlay.opacity, blend: overlay.blend })
      .then((item) => {
        overlay.loading = null;
        if (this.destroyed) return;
        if (!overlay.checkbox.checked) {
          this.viewer.world.removeItem(item);
          return;
        }
        overlay.item = item;
      })
      .catch((error) => {
        overlay.loading = null;
        overlay.checkbox.checked = false;
        this.fail(error);
      })
      .finally(() => {
        this.writeHash();
        this.updateRegion();
      });
  }

  toggleOverlay(key) {
    const overlay = this.overlays.get(key);
    if (overlay.checkbox.checked) {
      this.showOverlay(key);
    } else if (overlay.item) {
      this.viewer.world.removeItem(overlay.item);
      overlay.item = null;
    }
    this.writeHash();
    this.updateRegion();
  }

  // ---- viewport ----

  hookViewer() {
    const viewer = this.viewer;
    viewer.addHandler("animation-start", () => {
      this.animating = true;
    });
    viewer.addHandler("animation-finish", () => {
      this.animating = false;
      this.writeHash();
      this.updateRegion();
    });
    viewer.addHandler("resize", () => this.updateRegion());
    viewer.addHandler("tile-load-failed", (event) => this.fail(new Error(`tile ${event.tile.getUrl()}: ${event.message}`)));
    viewer.addHandler("canvas-press", (event) => {
      if (!this.selecting || !this.primary) return;
      event.preventDefaultAction = true;
      this.dragStart = this.primary.viewerElementToImageCoordinates(event.position);
    });
    viewer.addHandler("canvas-drag", (event) => {
      if (!this.selecting || !this.dragStart) return;
      event.preventDefaultAction = true;
      this.selectTo(event.position, false);
    });
    viewer.addHandler("canvas-drag-end", (event) => {
      if (this.selecting) event.preventDefaultAction = true;
    });
    viewer.addHandler("canvas-release", (event) => {
      if (!this.selecting || !this.dragStart) return;
      event.preventDefaultAction = true;
      this.selectTo(event.position, true);
      this.dragStart = null;
    });
    viewer.addHandler("canvas-click", (event) => {
      if (this.selecting) event.preventDefaultAction = true;
    });
  }

  /** Screen (CSS) pixels per image pixel. */
  imageZoom() {
    return this.primary.viewportToImageZoom(this.viewer.viewport.getZoom(true));
  }

  restoreViewport() {
    const zoom = Number.parseFloat(this.params.get("z"));
    const x = Number.parseFloat(this.params.get("x"));
    const y = Number.parseFloat(this.params.get("y"));
    const viewport = this.viewer.viewport;
    if (Number.isFinite(zoom) && zoom > 0) viewport.zoomTo(this.primary.imageToViewportZoom(zoom), null, true);
    if (Number.isFinite(x) && Number.isFinite(y)) viewport.panTo(this.primary.imageToViewportCoordinates(x, y), true);
  }

  zoomBy(factor) {
    this.viewer.viewport.zoomBy(factor);
    this.viewer.viewport.applyConstraints();
  }

  /** One image pixel per device pixel. */
  zoomOneToOne() {
    this.viewer.viewport.zoomTo(this.primary.imageToViewportZoom(1 / (window.devicePixelRatio || 1)));
  }

  writeHash() {
    if (!this.ready || this.destroyed) return;
    const params = new URLSearchParams();
    const center = this.primary.viewportToImageCoordinates(this.viewer.viewport.getCenter(true));
    params.set("z", round(this.imageZoom(), 6));
    params.set("x", center.x.toFixed(1));
    params.set("y", center.y.toFixed(1));
    const layers = [...this.overlays].filter(([, overlay]) => overlay.checkbox.checked).map(([key, overlay]) => layerToken(key, overlay));
    if (layers.length) params.set("layers", layers.join(","));
    const display = this.displayOptions();
    if (display.range) params.set("range", display.range.join(","));
    if (display.colormap) params.set("colormap", display.colormap);
    if (this.selection) params.set("region", [this.selection.left, this.selection.top, this.selection.width, this.selection.height].join(","));
    const hash = this.hashOf([this.dataSet.id, this.section.id], params);
    if (hash !== location.hash) history.replaceState(null, "", hash);
  }

  /** The hash of another section, keeping the layers and display options. */
  neighbourHash(offset) {
    const neighbour = this.dataSet.sections[this.index + offset];
    if (!neighbour) return null;
    const params = new URLSearchParams();
    const keep = [...this.overlays].filter(([key, overlay]) => overlay.checkbox.checked && neighbour.overlays.some((layer) => layer.key === key));
    if (keep.length) params.set("layers", keep.map(([key, overlay]) => layerToken(key, overlay)).join(","));
    const display = this.displayOptions();
    if (display.range && neighbour.bits === this.section.bits) params.set("range", display.range.join(","));
    if (display.colormap) params.set("colormap", display.colormap);
    return this.hashOf([this.dataSet.id, neighbour.id], params);
  }

  // ---- the rectangle tool ----

  setSelecting(on) {
    this.selecting = on;
    this.dragStart = null;
    this.selectButton.setAttribute("aria-pressed", String(on));
    this.selectButton.textContent = on ? "Selecting: drag on the image" : "Select a region";
    this.osdElement.classList.toggle("selecting", on);
  }

  clampSelection(x0, y0, x1, y1) {
    const { width, height } = this.section;
    const left = Math.max(0, Math.min(width, Math.floor(Math.min(x0, x1))));
    const top = Math.max(0, Math.min(height, Math.floor(Math.min(y0, y1))));
    const right = Math.max(0, Math.min(width, Math.ceil(Math.max(x0, x1))));
    const bottom = Math.max(0, Math.min(height, Math.ceil(Math.max(y0, y1))));
    return right > left && bottom > top ? { left, top, width: right - left, height: bottom - top } : null;
  }

  selectTo(position, done) {
    const end = this.primary.viewerElementToImageCoordinates(position);
    const selection = this.clampSelection(this.dragStart.x, this.dragStart.y, end.x, end.y);
    if (selection || done) this.setSelection(selection);
    if (done) this.writeHash();
  }

  setSelection(selection) {
    this.selection = selection;
    this.updateRegion();
  }

  placeOverlay(element, rect) {
    const location = this.primary.imageToViewportRectangle(rect.left, rect.top, rect.width, rect.height);
    if (element.parentNode) this.viewer.updateOverlay(element, location);
    else this.viewer.addOverlay({ element, location });
  }

  /** The URLs, the snippet and the two rectangles of the selection at the current zoom. */
  updateRegion() {
    if (!this.primary || this.destroyed) return;
    const section = this.section;
    if (!this.selection) {
      for (const element of [this.selectionBox, this.returnedBox]) if (element.parentNode) this.viewer.removeOverlay(element);
      this.regionOutput.replaceChildren(h("p", { class: "note" }, "Select a region to get its Allen download URL and an AllenSDK script."));
      this.clearButton.disabled = true;
      return;
    }
    this.clearButton.disabled = false;
    const devicePixels = this.imageZoom() * (window.devicePixelRatio || 1);
    const tier = screenTier(1 / devicePixels, this.maxStoredLevel);
    const region = allenRegion(this.selection, section, tier);
    const returned = region.returned;
    const shown = { left: returned.left - section.x, top: returned.top - section.y, width: returned.width, height: returned.height };
    this.placeOverlay(this.selectionBox, this.selection);
    this.placeOverlay(this.returnedBox, shown);
    Object.assign(this.returnedBox.dataset, {
      left: shown.left,
      top: shown.top,
      width: shown.width,
      height: shown.height,
      downsample: region.downsample,
    });
    this.returnedLabel.textContent = `${region.output.width} × ${region.output.height} at downsample ${region.downsample}`;
    const layers = [section.primary, ...section.overlays.filter((layer) => this.overlays.get(layer.key)?.checkbox.checked)];
    const display = this.displayOptions();
    const downloads = layers.map((layer) => {
      const options = downloadOptions(region, layer.key, layer.key === "primary" ? display : {});
      return {
        layer,
        imageId: section.id,
        endpoint: section.download,
        options,
        url: downloadUrl(section.download, options),
        file: fileName(section.id, layer.key, region),
      };
    });
    const scale = 2 ** region.downsample;
    this.regionOutput.replaceChildren(
      h(
        "p",
        { id: "region-summary" },
        `${region.output.width} × ${region.output.height} pixels at downsample ${region.downsample} `,
        h("span", { class: "note" }, `(1 pixel = ${scale} × ${scale} full-resolution pixels; scan x ${returned.left}–${returned.left + returned.width}, y ${returned.top}–${returned.top + returned.height})`),
      ),
      h(
        "ul",
        { id: "region-urls" },
        downloads.map((download) =>
          h("li", {}, h("span", { class: "layer" }, download.layer.label || download.layer.key), h("a", { href: download.url, target: "_blank", rel: "noopener", dataset: { layer: download.layer.key } }, download.url)),
        ),
      ),
      h("div", { class: "snippet-head" }, h("span", {}, "AllenSDK"), h("button", { type: "button", onclick: (event) => this.copySnippet(event.currentTarget) }, "Copy")),
      (this.snippet = h("pre", { id: "region-snippet" }, allenSdkSnippet(downloads))),
    );
  }

  async copySnippet(button) {
    try {
      await navigator.clipboard.writeText(this.snippet.textContent);
      button.textContent = "Copied";
    } catch {
      getSelection().selectAllChildren(this.snippet);
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => {
      button.textContent = "Copy";
    }, 2000);
  }

  // ---- page ----

  setStatus(message, isError = false) {
    if (!this.status) return;
    this.status.textContent = message;
    this.status.classList.toggle("error", isError);
  }

  fail(error) {
    if (this.destroyed) return;
    this.errors.push(error.message);
    this.setStatus(error.message, true);
  }

  scheduleDisplay(now) {
    clearTimeout(this.displayTimer);
    if (now) this.applyDisplay();
    else this.displayTimer = setTimeout(() => this.applyDisplay(), DISPLAY_DELAY_MS);
  }

  windowRows() {
    const count = this.section.components === 1 ? 1 : 3;
    const rows = [];
    for (let c = 0; c < count; c += 1) {
      const name = count === 1 ? "Value" : CHANNELS[c];
      const low = h("input", { type: "range", min: 0, max: this.maxValue, step: 1, value: this.window[c][0], "aria-label": `${name} lower`, dataset: { channel: c, end: 0 } });
      const high = h("input", { type: "range", min: 0, max: this.maxValue, step: 1, value: this.window[c][1], "aria-label": `${name} upper`, dataset: { channel: c, end: 1 } });
      const readout = h("output", {}, `${this.window[c][0]}–${this.window[c][1]}`);
      const sync = () => {
        low.value = this.window[c][0];
        high.value = this.window[c][1];
        readout.textContent = `${this.window[c][0]}–${this.window[c][1]}`;
      };
      const moved = (end, now) => (event) => {
        let value = Number(event.target.value);
        if (end === 0) value = Math.min(value, this.maxValue - 1);
        else value = Math.max(value, 1);
        this.window[c][end] = value;
        if (this.window[c][0] >= this.window[c][1]) {
          if (end === 0) this.window[c][1] = value + 1;
          else this.window[c][0] = value - 1;
        }
        sync();
        this.scheduleDisplay(now);
      };
      low.addEventListener("input", moved(0, false));
      low.addEventListener("change", moved(0, true));
      high.addEventListener("input", moved(1, false));
      high.addEventListener("change", moved(1, true));
      const head = h("div", { class: "head" }, h("span", { class: "name" }, name), readout);
      rows.push({ sync, element: h("div", { class: `channel channel-${c}` }, head, low, high) });
    }
    return rows;
  }

  renderDisplay() {
    const parts = [];
    if (this.deep) {
      const rows = this.windowRows();
      const reset = h("button", {
        type: "button",
        onclick: () => {
          this.window = this.defaultWindow.map((pair) => [...pair]);
          for (const row of rows) row.sync();
          this.scheduleDisplay(true);
        },
      }, this.dataSet.equalization ? "Equalization" : "Full range");
      parts.push(
        h("p", { class: "note" }, `Window of each channel on the ${this.section.bits}-bit scale (Allen range).`),
        ...rows.map((row) => row.element),
        h("div", { class: "buttons" }, reset),
      );
    }
    const select = h(
      "select",
      { id: "colormap", onchange: (event) => ((this.colormap = event.target.value), this.scheduleDisplay(true)) },
      h("option", { value: "" }, "none"),
      PALETTES.map((name) => h("option", { value: name, selected: name === this.colormap }, name)),
    );
    parts.push(h("label", { class: "row" }, "Colormap ", select));
    return h("section", { class: "display" }, h("h2", {}, "Display"), ...parts);
  }

  renderLayers() {
    const rows = this.section.overlays.map((layer) => {
      const checkbox = h("input", { type: "checkbox", dataset: { layer: layer.key } });
      const slider = h("input", { type: "range", min: 0, max: 100, step: 1, value: Math.round(DEFAULT_OPACITY * 100), "aria-label": `${layer.label} opacity`, dataset: { opacity: layer.key } });
      const blendSelect = h(
        "select",
        { "aria-label": `${layer.label} blend`, title: "How the layer is drawn over the image", dataset: { blend: layer.key } },
        Object.keys(BLENDS).map((name) => h("option", { value: name }, name)),
      );
      const overlay = { layer, checkbox, slider, blendSelect, item: null, loading: null, opacity: DEFAULT_OPACITY, blend: "normal" };
      this.overlays.set(layer.key, overlay);
      blendSelect.addEventListener("change", () => {
        overlay.blend = blendSelect.value;
        if (overlay.item) overlay.item.setCompositeOperation(BLENDS[overlay.blend]);
        this.writeHash();
      });
      checkbox.addEventListener("change", () => this.toggleOverlay(layer.key));
      slider.addEventListener("input", () => {
        overlay.opacity = Number(slider.value) / 100;
        if (overlay.item) overlay.item.setOpacity(overlay.opacity);
      });
      slider.addEventListener("change", () => this.writeHash());
      return h("div", { class: "layer-row" }, h("label", {}, checkbox, " ", layer.label || layer.key), blendSelect, slider);
    });
    return h("section", { class: "layers" }, h("h2", {}, "Layers"), rows.length ? rows : h("p", { class: "note" }, "This image has no other layer."));
  }

  renderDetails() {
    const s = this.section;
    const facts = [
      ["Image", `${s.model} ${s.id}`],
      ["Section number", s.sectionNumber],
      ["Size", `${s.width} × ${s.height} pixels`],
      ["In scan", s.x || s.y || s.imageWidth !== s.width || s.imageHeight !== s.height ? `at (${s.x}, ${s.y}) of ${s.imageWidth} × ${s.imageHeight}` : null],
      ["Resolution", s.resolution],
      ["Samples", `${s.components} × ${s.bits} bits`],
    ].filter(([, value]) => value !== null && value !== undefined);
    const links = [
      ["IIIF info.json", `${s.primary.service}/info.json`],
      ["Whole section (Allen)", s.download],
    ].filter(([, url]) => url);
    return h(
      "section",
      { class: "details" },
      h("h2", {}, "Image"),
      h("dl", {}, facts.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, String(value))])),
      h("p", { class: "links" }, links.map(([name, url]) => h("a", { href: url, target: "_blank", rel: "noopener" }, name))),
    );
  }

  render() {
    const s = this.section;
    const count = this.dataSet.sections.length;
    const neighbour = (offset, label) => {
      const exists = Boolean(this.dataSet.sections[this.index + offset]);
      // the hash is made on click: it carries the layers and display options in effect then
      const go = () => exists && (location.hash = this.neighbourHash(offset));
      return h("button", { type: "button", class: offset < 0 ? "prev" : "next", disabled: !exists, onclick: go }, label);
    };
    this.osdElement = h("div", { id: "osd", class: "osd", tabindex: 0, "aria-label": `${s.label}, deep zoom` });
    this.status = h("div", { class: "status", role: "status" });
    this.selectionBox = h("div", { class: "region-selection" });
    this.returnedLabel = h("span", { class: "region-label" });
    this.returnedBox = h("div", { class: "region-returned" }, this.returnedLabel);
    this.selectButton = h("button", { type: "button", id: "select-region", "aria-pressed": "false", onclick: () => this.setSelecting(!this.selecting) }, "Select a region");
    this.clearButton = h("button", { type: "button", id: "clear-region", disabled: true, onclick: () => (this.setSelection(null), this.writeHash()) }, "Clear");
    this.regionOutput = h("div", { class: "region-output" });
    const controls = h(
      "div",
      { class: "controls" },
      h("button", { type: "button", title: "Zoom in", "aria-label": "Zoom in", onclick: () => this.zoomBy(2) }, "+"),
      h("button", { type: "button", title: "Zoom out", "aria-label": "Zoom out", onclick: () => this.zoomBy(0.5) }, "−"),
      h("button", { type: "button", title: "Whole section", "aria-label": "Whole section", onclick: () => this.viewer.viewport.goHome() }, "⌂"),
      h("button", { type: "button", title: "One image pixel per screen pixel", onclick: () => this.zoomOneToOne() }, "1:1"),
    );
    const panel = h(
      "aside",
      { class: "panel" },
      h(
        "header",
        {},
        h("h1", {}, s.label, " ", h("small", {}, `image ${s.id}`)),
        h("div", { class: "neighbours" }, neighbour(-1, "◀ Previous"), h("span", { class: "position" }, `${this.index + 1} / ${count}`), neighbour(1, "Next ▶")),
      ),
      this.renderLayers(),
      this.renderDisplay(),
      h("section", { class: "region" }, h("h2", {}, "Region"), h("div", { class: "buttons" }, this.selectButton, this.clearButton), this.regionOutput),
      this.renderDetails(),
    );
    this.root.replaceChildren(h("div", { class: "section-view" }, h("div", { class: "stage" }, this.osdElement, controls, this.status), panel));
    document.addEventListener("keydown", (this.onKey = (event) => event.key === "Escape" && this.selecting && this.setSelecting(false)));
  }

  /** The last stored level (info.json's largest scale factor is 2^level). */
  get maxStoredLevel() {
    return this.storedLevels ?? 0;
  }
}
