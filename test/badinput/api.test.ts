import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultChanges } from '../../src/simulator/faults.js';
import { OK_FALSE_ERROR } from '../../src/simulator/malformed.js';
import { runCliOnConfig } from '../support/cli.js';
import { createPipeline, eventually, type Pipeline } from '../support/pipeline.js';
import { type RunningDaemon, readRejects, startDaemon } from './support.js';

/**
 * Answers Verbose does not document, through the real daemon against the simulator: each gets a clear outcome
 * (retried with an alarm, split and rejected with the API's text, or fatal at start with the fix), and no
 * contact is lost.
 */

const SCHEMA = `CREATE TABLE people (id bigserial PRIMARY KEY, name text, mobile text);`;
const MAPPINGS = `
mappings:
  - table: public.people
    list: CRM people
    fields:
      phone: mobile
      first_name: { column: name, transform: first_word }`;

/** Fast alarms and a short request timeout, so each misbehaviour shows within a second or two. */
const quickRetries = (yaml: string) =>
  yaml.replace('  concurrency: 4', '  concurrency: 4\n  retry_alarm_ms: 100\n  request_timeout_ms: 500');

describe('Verbose answers that are not what the API documents', () => {
  let p: Pipeline;
  let run: RunningDaemon;
  let next = 1000;

  /** Inserts people with fresh valid phones in one transaction; returns their phones in E.164. */
  async function insertPeople(count: number): Promise<string[]> {
    const phones = Array.from({ length: count }, () => `+1212555${next++}`);
    await p.db.query(`INSERT INTO people (name, mobile) SELECT 'Person ' || n, n FROM unnest($1::text[]) n`, [
      phones,
    ]);
    return phones;
  }

  const delivered = (phones: string[]) => phones.every((phone) => p.simulator.store.contact(phone));

  /** Log lines written since `from`, of failed requests and of retry alarms. */
  const failures = (from: number) => run.logs.slice(from).filter((l) => l.detail !== undefined);
  const alarms = (from: number) =>
    run.logs.slice(from).filter((l) => String(l.msg).startsWith('RETRY ALARM'));

  /**
   * Puts a fault on, inserts people, and waits until their batch has been refused at least twice with an
   * alarm raised; checks nothing of it was stored; takes the fault off and waits for every one to arrive.
   * Returns the failure log lines, for the test to check what they say.
   */
  async function retriedUntilFixed(fault: FaultChanges, off: FaultChanges, { storedLate = false } = {}) {
    const from = run.logs.length;
    p.simulator.setFaults(fault);
    let phones: string[];
    try {
      phones = await insertPeople(3);
      await eventually(
        () => failures(from).length >= 2 && alarms(from).length >= 1,
        20_000,
        'retries and an alarm',
      );
      // A slow answer is still handled by the simulator once the client gave up on it; the others never are.
      if (!storedLate) expect(phones.some((phone) => p.simulator.store.contact(phone))).toBe(false);
    } finally {
      p.simulator.setFaults(off);
    }
    await eventually(() => delivered(phones), 20_000, 'the contacts after the fault');
    expect(p.simulator.store.contact(phones[0]!)).toMatchObject({ first_name: 'Person' });
    expect(run.stopped()).toBe(false);
    return failures(from);
  }

  /** Puts a fault on and waits until each of `count` new people is set aside by the API; returns the rejects. */
  async function setAside(fault: FaultChanges, count: number) {
    p.simulator.setFaults(fault);
    try {
      const phones = await insertPeople(count);
      const mine = async () =>
        (await readRejects(p.stateDir)).filter((r) => phones.includes(r.contact?.phone ?? ''));
      await eventually(async () => (await mine()).length === count, 20_000, `${count} API rejects`);
      expect(phones.some((phone) => p.simulator.store.contact(phone))).toBe(false);
      return mine();
    } finally {
      p.simulator.setFaults({ malformedRate: 0 });
    }
  }

  /** A change after the bad answers still goes through: the daemon runs on and its checkpoint moves on. */
  async function nextChangeDelivered() {
    const after = await insertPeople(1);
    await eventually(() => delivered(after), 20_000, 'the next change');
    expect(run.stopped()).toBe(false);
  }

  beforeAll(async () => {
    p = await createPipeline('badinput_api', MAPPINGS, SCHEMA);
    run = await startDaemon(p, quickRetries);
    await eventually(() => run.daemon.readiness().ok, 20_000, 'the daemon ready');
  });
  afterAll(async () => {
    await run?.daemon.stop();
    await p?.close();
  });

  it('retries a 502 HTML error page with an alarm, saying the page title rather than its HTML', async () => {
    const lines = await retriedUntilFixed({ htmlErrorRate: 1 }, { htmlErrorRate: 0 });
    expect(lines[0]).toMatchObject({ status: 502, detail: 'HTTP 502: 502: BAD_GATEWAY' });
    expect(JSON.stringify(lines)).not.toContain('<html');
  });

  it('retries a 200 with an empty body: never taken for a success', async () => {
    const lines = await retriedUntilFixed({ malformedRate: 1, malformedKind: 'empty' }, { malformedRate: 0 });
    expect(lines[0]).toMatchObject({ status: 200, detail: expect.stringMatching(/empty body/) });
  });

  it('retries a 200 whose JSON is cut short', async () => {
    const lines = await retriedUntilFixed(
      { malformedRate: 1, malformedKind: 'truncated' },
      { malformedRate: 0 },
    );
    expect(lines[0]).toMatchObject({ status: 200, detail: expect.stringMatching(/JSON cut short/) });
  });

  it('retries a 200 whose body breaks off before its end', async () => {
    const lines = await retriedUntilFixed(
      { malformedRate: 1, malformedKind: 'cutOff' },
      { malformedRate: 0 },
    );
    expect(String(lines[0]?.detail)).toMatch(/incomplete|broke off|connection/);
  });

  it('retries a 200 with a web page instead of JSON, pointing at verbose.url', async () => {
    const lines = await retriedUntilFixed({ malformedRate: 1, malformedKind: 'html' }, { malformedRate: 0 });
    expect(lines[0]).toMatchObject({
      status: 200,
      detail: expect.stringMatching(/not JSON: Verbose – Sign in.*is verbose\.url the API base URL\?/),
    });
  });

  it('retries a redirect without following it, naming where it points', async () => {
    const lines = await retriedUntilFixed(
      { malformedRate: 1, malformedKind: 'redirect' },
      { malformedRate: 0 },
    );
    const host = new URL(p.simulator.url).host;
    expect(lines[0]).toMatchObject({
      status: 308,
      detail: expect.stringContaining(`redirected to https://${host}/api/public/contacts`),
    });
    expect(String(lines[0]?.detail)).toContain(`set verbose.url to https://${host}`);
  });

  it('retries an answer whose first byte comes after request_timeout_ms, and gets through once it is quick', async () => {
    const from = run.logs.length;
    const lines = await retriedUntilFixed({ latencyMs: 1500 }, { latencyMs: 0 }, { storedLate: true });
    expect(lines[0]).toMatchObject({ status: 'timeout', detail: 'no answer within 500 ms' });
    await eventually(
      () => run.logs.slice(from).some((l) => l.msg === 'a batch got through after retries'),
      5_000,
      'the batch through after retries',
    );
  });

  it('splits a batch answered 200 with ok:false and sets each contact aside with the API text', async () => {
    const rejects = await setAside({ malformedRate: 1, malformedKind: 'okFalse200' }, 3);
    for (const reject of rejects) {
      expect(reject).toMatchObject({
        stage: 'api',
        table: 'public.people',
        reason: OK_FALSE_ERROR,
        contact: { target: { list: 'CRM people' }, fields: { first_name: 'Person' } },
      });
      expect(reject.key).toEqual({ id: expect.any(String) });
      expect(reject.phone).toBe(reject.contact?.phone);
    }
    await nextChangeDelivered();
  });

  it('sets contacts aside on a 400 HTML page with its readable title, never the HTML', async () => {
    const rejects = await setAside({ malformedRate: 1, malformedKind: 'html400' }, 2);
    expect(rejects.map((r) => r.reason)).toEqual([
      'HTTP 400: 400: BAD_REQUEST',
      'HTTP 400: 400: BAD_REQUEST',
    ]);
    await nextChangeDelivered();
  });
});

describe('a verbose.url that is not the API', () => {
  let p: Pipeline;
  let dir: string;
  beforeAll(async () => {
    p = await createPipeline('badinput_url', MAPPINGS, SCHEMA);
    dir = await mkdtemp(join(tmpdir(), 'verbose-sync-badinput-url-'));
  });
  afterAll(async () => {
    await p?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const runWith = (yaml: string) =>
    runCliOnConfig(dir, 'run', yaml.replace('api_key: as_test_key', 'api_key: as_live_not_for_logs'), {
      env: { LOG_LEVEL: 'info' },
      timeoutMs: 20_000,
    });

  it('stops at start with exit 1 when the path is wrong (404), saying to fix verbose.url, sending nothing', async () => {
    const result = await runWith(p.yaml().replace(`url: ${p.simulator.url}`, `url: ${p.simulator.url}/v1`));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /verbose\.url http:\/\/127\.0\.0\.1:\d+\/v1 does not lead to the Verbose API: GET \/api\/public\/me got HTTP 404: Not found: GET \/v1\/api\/public\/me/,
    );
    expect(result.stderr).toContain('Set verbose.url to the base URL of the API');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout + result.stderr).not.toContain('as_live_not_for_logs');
    expect(p.simulator.requests.entries().filter((e) => e.path.endsWith('/contacts'))).toEqual([]);
  });

  it('stops at start with exit 1 when the URL redirects, naming where to and never following it', async () => {
    const before = p.simulator.requests.count();
    p.simulator.setFaults({ malformedRate: 1, malformedKind: 'redirect' });
    const result = await runWith(p.yaml());
    p.simulator.setFaults({ malformedRate: 0 });
    const host = new URL(p.simulator.url).host;
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `GET /api/public/me got HTTP 308: redirected to https://${host}/api/public/me`,
    );
    expect(result.stderr).toContain(`set verbose.url to https://${host}`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout + result.stderr).not.toContain('as_live_not_for_logs');
    expect(p.simulator.requests.count() - before).toBe(1);
  });
});
