// Starts the liaison in Pyodide, in a Web Worker, and runs a few calls with progress.
// Served from clients/js (after `npm install` and `npm run build`), e.g.
// `python3 -m http.server` there, then http://localhost:8000/examples/browser-pyodide/.
// With the COOP/COEP headers that make the page cross-origin isolated, a timeout or
// cancel also interrupts a busy command (see the README).
import { startPyodideLiaison } from "../../dist/pyodide.js";

const status = document.getElementById("status");
const bar = document.getElementById("bar");
const results = document.getElementById("results");

// Commands import this file like any module: `analysis:estimate_pi`.
const ANALYSIS = `
import random
import liaison


def estimate_pi(samples, seed=1):
    """Monte Carlo: the share of random points inside the quarter circle, times 4."""
    rng = random.Random(seed)
    inside = 0
    step = samples // 10
    for i in range(samples):
        x, y = rng.random(), rng.random()
        inside += x * x + y * y <= 1
        if (i + 1) % step == 0:
            liaison.progress({"done": i + 1, "of": samples})
    return 4 * inside / samples
`;

function show(name, value) {
  const item = document.createElement("li");
  item.dataset.name = name;
  item.dataset.value = JSON.stringify(value);
  item.textContent = `${name}: ${JSON.stringify(value)}`;
  results.append(item);
}

try {
  const started = performance.now();
  const liaison = await startPyodideLiaison({
    indexURL: new URL("../../node_modules/pyodide/", import.meta.url).href,
    files: { "analysis.py": ANALYSIS },
  });
  show("ready in ms", Math.round(performance.now() - started));
  show("python", await liaison.get("sys:version"));
  show("mean", await liaison.module("statistics").mean([1, 2, 3, 4]));
  status.textContent = "Estimating π…";
  const progress = [];
  const pi = await liaison.run("analysis:estimate_pi", [200_000], {}, {
    onProgress: ({ done, of }) => {
      bar.value = done / of;
      progress.push(done);
    },
  });
  show("pi", pi);
  show("progress", progress);
  show("interruptible", globalThis.crossOriginIsolated === true);
  await liaison.close();
  status.textContent = "done";
} catch (error) {
  status.textContent = `failed: ${error}`;
}
