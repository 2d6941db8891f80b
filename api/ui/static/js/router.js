// Hash routes (#/runs/<id>?status=failed): the server serves one page, the browser keeps the
// history, and every view has an address that can be bookmarked or shared.
import { useEffect, useState } from "./lib.js";

export function parseHash(hash) {
  const raw = hash.replace(/^#\/?/, "");
  const [path, search = ""] = raw.split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(search) };
}

export function href(parts, query = {}) {
  const path = parts.map((part) => encodeURIComponent(part)).join("/");
  const search = new URLSearchParams(
    Object.entries(query).filter(([, value]) => value !== undefined && value !== null && value !== ""),
  ).toString();
  return `#/${path}${search ? `?${search}` : ""}`;
}

export function navigate(parts, query = {}) {
  window.location.hash = href(parts, query);
}

export function useRoute() {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseHash(window.location.hash));
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}
