// Python objects as proxies: module calls with keyword arguments, a reference to a
// non-JSON object (random.Random) and its methods, passing it back, releasing it.
//   node examples/proxies.mjs
import { kw, spawnLiaison } from "liaison-client/node";
import { python } from "./python.mjs";

const liaison = await spawnLiaison({ python }); // examples/python.mjs: which Python
try {
  const stats = liaison.module("scipy.stats"); // no round trip
  const a = [0.5982758, 0.67019733, 0.68617796, 0.28764011];
  const b = [0.41138649, 1.67023998, 1.0420896, 1.49671732];
  const [statistic, pvalue] = await stats.ttest_ind(a, b, kw({ equal_var: false }));
  const sep = await liaison.module("os").path.sep; // awaiting an attribute reads it

  const rng = await liaison.module("random").Random(42); // not JSON: a proxy for a reference
  const draws = [await rng.random(), await rng.randint(1, 6)];
  const twin = await liaison.module("copy").deepcopy(rng); // rng travels as "$_refN"
  const same = (await twin.random()) === (await rng.random());
  await liaison.release(rng, twin); // or `await using rng = ...`, or just drop them

  console.log(JSON.stringify({ statistic, pvalue, sep, draws, same }));
} finally {
  process.exitCode = await liaison.stop();
}
