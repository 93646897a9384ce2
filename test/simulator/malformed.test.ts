import { describe, expect, it } from 'vitest';
import { MALFORMED_KINDS } from '../../src/simulator/faults.js';
import { OK_FALSE_ERROR } from '../../src/simulator/malformed.js';
import { parseSimulatorArgs, SIMULATOR_USAGE, SimulatorArgsError } from '../../src/simulator/options.js';
import type { Simulator } from '../../src/simulator/simulator.js';
import { KEY, postContacts, sequence, simulator } from './http.js';

const contact = { phone: '+15550000001', first_name: 'Jo' };

/** The answer as bytes on the wire: no JSON parsing, redirects not followed. */
async function raw(sim: Simulator, path = '/api/public/contacts') {
  const response = await fetch(`${sim.url}${path}`, {
    method: path.endsWith('/me') ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: path.endsWith('/me') ? undefined : JSON.stringify({ contacts: [contact], list: 'Leads' }),
    redirect: 'manual',
  });
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    location: response.headers.get('location'),
    text: await response.text(),
  };
}

describe('malformedRate and malformedKind', () => {
  it('answers 200 with no body at all, and stores nothing', async () => {
    const sim = await simulator({ faults: { malformedRate: 1, malformedKind: 'empty' } });
    expect(await raw(sim)).toMatchObject({ status: 200, text: '' });
    expect(sim.store.size).toBe(0);
    expect(sim.store.lists()).toEqual([]);
    expect(sim.requests.countOf(200)).toBe(1);
    expect(sim.requests.contactsAccepted()).toBe(0);
  });

  it('answers 200 with JSON cut short, complete as HTTP', async () => {
    const sim = await simulator({ faults: { malformedRate: 1, malformedKind: 'truncated' } });
    const answer = await raw(sim);
    expect(answer).toMatchObject({ status: 200, text: '{"ok":true,"imported":' });
    expect(answer.type).toMatch(/^application\/json/);
    expect(() => JSON.parse(answer.text)).toThrow();
    expect(sim.store.size).toBe(0);
  });

  it('closes the connection mid-body, before the promised length, and logs it as dropped', async () => {
    const sim = await simulator({ faults: { malformedRate: 1, malformedKind: 'cutOff' } });
    await expect(raw(sim)).rejects.toThrow();
    expect(sim.store.size).toBe(0);
    expect(sim.requests.countsByStatus()).toEqual({ dropped: 1 });
  });

  it('answers 200 with a web page, as a web app does when the URL is not the API', async () => {
    const sim = await simulator({ faults: { malformedRate: 1, malformedKind: 'html' } });
    const answer = await raw(sim);
    expect(answer.status).toBe(200);
    expect(answer.type).toMatch(/^text\/html/);
    expect(answer.text).toMatch(/^<!DOCTYPE html>.*<title>/);
    expect(sim.store.size).toBe(0);
  });

  it('answers 200 with an ok:false envelope', async () => {
    const sim = await simulator({ faults: { malformedRate: 1, malformedKind: 'okFalse200' } });
    const answer = await raw(sim);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ ok: false, error: OK_FALSE_ERROR });
    expect(sim.store.size).toBe(0);
  });

  it('answers 400 with a proxy HTML page instead of the JSON envelope', async () => {
    const sim = await simulator({ faults: { malformedRate: 1, malformedKind: 'html400' } });
    const answer = await raw(sim);
    expect(answer.status).toBe(400);
    expect(answer.type).toMatch(/^text\/html/);
    expect(answer.text).toContain('<title>400: BAD_REQUEST</title>');
    expect(sim.store.size).toBe(0);
  });

  it('redirects to the same path over https, for /me as for /contacts', async () => {
    const sim = await simulator({ faults: { malformedRate: 1, malformedKind: 'redirect' } });
    const host = new URL(sim.url).host;
    expect(await raw(sim)).toMatchObject({
      status: 308,
      location: `https://${host}/api/public/contacts`,
    });
    expect(await raw(sim, '/api/public/me')).toMatchObject({
      status: 308,
      location: `https://${host}/api/public/me`,
    });
    expect(sim.store.size).toBe(0);
  });

  it('gives malformed answers to the fraction whose draw falls below the rate, and handles the rest', async () => {
    const sim = await simulator({
      faults: { malformedRate: 0.5, malformedKind: 'okFalse200' },
      random: sequence(0.9, 0.1),
    });
    expect((await postContacts(sim, contact)).body).toEqual({ ok: true, imported: 1, skipped: 0 });
    expect((await postContacts(sim, contact)).body).toEqual({ ok: false, error: OK_FALSE_ERROR });
    expect(sim.store.contact(contact.phone)?.writes).toBe(1);
  });

  it('answers normally once switched off, and at rate 0 never misbehaves', async () => {
    const sim = await simulator({ faults: { malformedRate: 1, malformedKind: 'empty' } });
    sim.setFaults({ malformedRate: 0 });
    expect((await postContacts(sim, contact)).status).toBe(200);
    expect(sim.store.size).toBe(1);
  });

  it('refuses an unknown kind, naming the setting and the kinds', async () => {
    const sim = await simulator();
    expect(() => sim.setFaults({ malformedKind: 'garbage' as never })).toThrow(
      `malformedKind must be one of ${MALFORMED_KINDS.join(', ')}, got "garbage"`,
    );
    expect(() => sim.setFaults({ malformedRate: 2 })).toThrow('malformedRate must be a number from 0 to 1');
    expect(sim.faults).toMatchObject({ malformedRate: 0, malformedKind: 'empty' });
  });
});

describe('--malformed-rate and --malformed-kind', () => {
  it('reads both flags', () => {
    expect(parseSimulatorArgs(['--malformed-rate', '0.25', '--malformed-kind', 'html400'])).toEqual({
      faults: { malformedRate: 0.25, malformedKind: 'html400' },
    });
  });

  it('refuses an unknown kind with a message naming the flag and the kinds', () => {
    expect(() => parseSimulatorArgs(['--malformed-kind', 'weird'])).toThrow(SimulatorArgsError);
    expect(() => parseSimulatorArgs(['--malformed-kind', 'weird'])).toThrow(
      `--malformed-kind must be one of ${MALFORMED_KINDS.join(', ')}, got "weird"`,
    );
  });

  it('documents both flags and every kind in the usage text', () => {
    expect(SIMULATOR_USAGE).toContain('--malformed-rate');
    expect(SIMULATOR_USAGE).toContain('--malformed-kind');
    for (const kind of MALFORMED_KINDS) expect(SIMULATOR_USAGE).toContain(kind);
  });
});
