// The quickstart: spawn a liaison (fresh token, free port), run the seed's t-test, print it.
//   node examples/ttest.mjs
import { spawnLiaison } from "liaison-client/node";
import { python } from "./python.mjs";

const liaison = await spawnLiaison({ python }); // examples/python.mjs: which Python
const a = [0.5982758, 0.67019733, 0.68617796, 0.28764011];
const b = [0.41138649, 1.67023998, 1.0420896, 1.49671732];
console.log(JSON.stringify(await liaison.run("scipy.stats:ttest_ind", [a, b], { equal_var: false })));
process.exitCode = await liaison.stop();
