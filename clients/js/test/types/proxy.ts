// Type-level tests of the proxy API, checked by `tsc --noEmit` (npm run test:types):
// what a program may write compiles, and each `@ts-expect-error` line must fail to
// compile, so loosening a type to `any` fails this test.
import { kw, type Liaison, type PyAttribute, type PyProxy } from "../../dist/index.js";

declare const liaison: Liaison;

export async function uses(): Promise<void> {
  const stats: PyProxy = liaison.module("scipy.stats");
  const result: Promise<any> = stats.ttest_ind([1, 2], [3, 4], kw({ equal_var: false }));
  await result;
  const join: PyAttribute = liaison.module("os").path.join;
  await join("a", "b");
  const pi: number = await liaison.module("math").pi; // an attribute is awaitable
  void pi;
  const rng = await liaison.module("random").Random(42);
  await rng.random();
  await liaison.release(rng);

  // @ts-expect-error keyword arguments are an object
  kw(3);
  // @ts-expect-error a proxy is read-only: set attributes with a Python call
  stats.alpha = 0.05;
  // @ts-expect-error a module name is a string
  liaison.module(42);
  // @ts-expect-error calling a proxy gives a promise, not a value
  const now: number = liaison.module("time").time();
  void now;
}
