import type { FaultChanges } from './faults.js';
import type { Simulator, Workspace } from './simulator.js';
import { type Answer, failure, parseJson } from './wire.js';

const ok = (body: object = {}): Answer => ({ status: 200, body: { ok: true, ...body } });

/**
 * The `/_simulator/*` endpoints, for tests and users to look at and steer a running simulator over HTTP.
 * They need no key, meet no faults and stay out of the request log.
 */
export function answerControl(
  sim: Simulator,
  workspace: Workspace,
  method: string,
  path: string,
  body = '',
): Answer {
  const routes: Record<string, Record<string, () => Answer>> = {
    '/_simulator/state': {
      GET: () =>
        ok({
          workspace,
          contacts: sim.store.contacts(),
          lists: sim.store.lists(),
          requests: sim.requests.stats(),
          faults: sim.faults,
        }),
    },
    '/_simulator/requests': { GET: () => ok({ requests: sim.requests.entries() }) },
    '/_simulator/faults': {
      GET: () => ok({ faults: sim.faults }),
      POST: () => {
        const changes = parseJson(body);
        if (!changes.ok) return failure(400, changes.error);
        try {
          // setFaults checks every value at run time, whatever the JSON held.
          return ok({ faults: sim.setFaults(changes.value as FaultChanges) });
        } catch (error) {
          return failure(400, (error as Error).message);
        }
      },
    },
    '/_simulator/revoke': {
      POST: () => {
        sim.revokeKey();
        return ok();
      },
    },
    '/_simulator/reset': {
      POST: () => {
        sim.reset();
        return ok();
      },
    },
  };
  const methods = routes[path];
  if (!methods) return failure(404, `Not found: ${method} ${path}`);
  const handler = methods[method];
  if (!handler)
    return { ...failure(405, 'Method not allowed'), headers: { allow: Object.keys(methods).join(', ') } };
  return handler();
}
