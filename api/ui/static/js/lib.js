// The one place the vendored libraries are imported: Preact, its hooks, and htm templates.
import { h, render } from "../vendor/preact.module.js";
import htm from "../vendor/htm.module.js";

export { render };
export { useCallback, useEffect, useMemo, useRef, useState } from "../vendor/hooks.module.js";
export const html = htm.bind(h);
