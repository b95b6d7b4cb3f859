/**
 * What Node 21 and later define for every program, defined here for Node
 * 20 before anything else loads: `navigator`, its userAgent saying
 * Node.js. node-postgres asks when it loads whether it runs in a
 * Cloudflare Worker; with no `navigator` it builds a `Response` to find
 * out, which loads Node's fetch implementation (undici): 16 of the 33 ms
 * `pg` took to load, in every command that connects. Left alone where a
 * `navigator` exists.
 */
import { availableParallelism } from 'node:os';

if (typeof (globalThis as { navigator?: unknown }).navigator === 'undefined') {
  Object.defineProperty(globalThis, 'navigator', {
    value: { userAgent: `Node.js/${process.versions.node.split('.')[0]}`, hardwareConcurrency: availableParallelism() },
    configurable: true,
    enumerable: true,
    writable: true,
  });
}
