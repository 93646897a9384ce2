import { describe, expect, it } from 'vitest';
import { parseSimulatorArgs, SIMULATOR_USAGE, SimulatorArgsError } from '../../src/simulator/options.js';
import { postContacts, simulator } from './http.js';

describe('parseSimulatorArgs', () => {
  it('gives no options for no arguments', () => {
    expect(parseSimulatorArgs([])).toEqual({});
  });

  it('reads every option', () => {
    const options = parseSimulatorArgs(
      [
        '--port=8080',
        '--host',
        '0.0.0.0',
        '--api-key',
        'as_live_x',
        '--list',
        'lst_1=API leads',
        '--list=lst_2=Odoo contacts',
        '--rate-limit',
        '5',
        '--error-rate',
        '0.1',
        '--html-error-rate',
        '0.01',
        '--drop-rate',
        '0.02',
        '--lost-response-rate',
        '0.03',
        '--latency-ms',
        '100',
        '--latency-jitter-ms',
        '50',
        '--max-batch-size',
        '500',
        '--max-body-bytes',
        '4500000',
        '--revoke-at',
        '2030-01-01T00:00:00Z',
      ],
      0,
    );
    expect(options).toEqual({
      port: 8080,
      host: '0.0.0.0',
      apiKey: 'as_live_x',
      lists: [
        { id: 'lst_1', name: 'API leads' },
        { id: 'lst_2', name: 'Odoo contacts' },
      ],
      faults: {
        rateLimitPerSecond: 5,
        errorRate: 0.1,
        htmlErrorRate: 0.01,
        dropRate: 0.02,
        lostResponseRate: 0.03,
        latencyMs: 100,
        latencyJitterMs: 50,
        maxBatchSize: 500,
        maxBodyBytes: 4_500_000,
        revokeAt: Date.parse('2030-01-01T00:00:00Z'),
      },
    });
  });

  it('takes --revoke-at as epoch milliseconds and --revoke-after-ms from now', () => {
    expect(parseSimulatorArgs(['--revoke-at', '1700000000000'])).toEqual({
      faults: { revokeAt: 1_700_000_000_000 },
    });
    expect(parseSimulatorArgs(['--revoke-after-ms', '5000'], 1_000)).toEqual({ faults: { revokeAt: 6_000 } });
  });

  it('names an unknown option and lists the valid ones', () => {
    expect(() => parseSimulatorArgs(['--eror-rate', '0.1'])).toThrow(SimulatorArgsError);
    expect(() => parseSimulatorArgs(['--eror-rate', '0.1'])).toThrow(
      /^Unknown option --eror-rate; valid options: --port, --host, --api-key, --list, --rate-limit, --error-rate,/,
    );
    expect(() => parseSimulatorArgs(['-p', '1'])).toThrow(/^Unknown option -p; valid options: --port/);
  });

  it.each([
    [['--port'], '--port needs a value: --port N'],
    [['--port', 'http'], '--port must be a number, got "http"'],
    [['--port', '70000'], '--port must be a whole number from 0 to 65535, got "70000"'],
    [['--error-rate', '2'], '--error-rate must be a number from 0 to 1, got 2'],
    [['--rate-limit', '0'], '--rate-limit must be a number above 0'],
    [['--latency-ms', ''], '--latency-ms must be a number, got ""'],
    [['--max-batch-size', '0.5'], '--max-batch-size must be a whole number, 1 or more'],
    [['--revoke-at', 'tomorrow'], '--revoke-at must be a time'],
    [
      ['--revoke-at', '0', '--revoke-after-ms', '1'],
      'Give either --revoke-at or --revoke-after-ms, not both',
    ],
    [['--list', 'API leads'], '--list must look like ID=NAME'],
    [
      ['--list', 'a=One', '--list', 'a=Two'],
      '--list: each list id and each list name may be given only once',
    ],
    [['--api-key', ''], '--api-key must not be empty'],
    [['8080'], 'Unexpected argument "8080"; valid options: --port'],
  ])('refuses %j with a message naming the option', (argv, message) => {
    expect(() => parseSimulatorArgs(argv)).toThrow(SimulatorArgsError);
    expect(() => parseSimulatorArgs(argv)).toThrow(message);
  });

  it('documents every option in the usage text', () => {
    for (const flag of [
      '--port',
      '--api-key',
      '--list',
      '--rate-limit',
      '--error-rate',
      '--drop-rate',
      '--revoke-at',
    ]) {
      expect(SIMULATOR_USAGE).toContain(flag);
    }
  });

  it('gives options a simulator starts with', async () => {
    const sim = await simulator(
      parseSimulatorArgs(['--api-key', 'as_live_x', '--max-batch-size', '1', '--list', 'l1=Leads']),
    );
    const reply = await postContacts(
      sim,
      { contacts: [{ phone: '+15550000001' }], list_id: 'l1' },
      'as_live_x',
    );
    expect(reply.body).toEqual({ ok: true, imported: 1, skipped: 0, list_id: 'l1' });
    expect(
      (await postContacts(sim, [{ phone: '+15550000001' }, { phone: '+15550000002' }], 'as_live_x')).status,
    ).toBe(413);
  });
});
