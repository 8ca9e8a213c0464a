// Small DOM helpers shared by the pages.

/** An element: h("a", {href: "#/", class: "x"}, "text", child, ...); `on*` attributes add listeners. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** JSON of a URL; rejects with a message naming the URL and the server's answer. */
export async function getJson(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" } });
  } catch (error) {
    throw new Error(`${url}: ${error.message}`);
  }
  if (!response.ok) {
    const body = await response.text();
    let message = body.slice(0, 300);
    try {
      const parsed = JSON.parse(body);
      message = parsed.error || parsed.msg || message;
    } catch {
      // not JSON: keep the text
    }
    throw new Error(`${url}: ${response.status} ${message}`);
  }
  return response.json();
}

/** The location hash as a path (segments) and parameters: #/1001/2001?z=1&x=2 */
export function parseHash(hash) {
  const body = hash.replace(/^#/, "");
  const [path, query = ""] = body.split("?", 2);
  return {
    path: path.split("/").filter(Boolean).map(decodeURIComponent),
    params: new URLSearchParams(query),
  };
}

/** The hash of a path and parameters (parameters with empty values left out). */
export function formatHash(path, params = new URLSearchParams()) {
  const kept = [...params].filter(([, value]) => value !== "" && value !== null && value !== undefined);
  const query = kept.map(([name, value]) => `${name}=${encodeURIComponent(value).replace(/%2C/g, ",").replace(/%3A/g, ":")}`);
  return `#/${path.map(encodeURIComponent).join("/")}${query.length ? `?${query.join("&")}` : ""}`;
}
