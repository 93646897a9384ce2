import { parseArgs } from 'node:util';
import {
  FAULT_RULES,
  type FaultChanges,
  type FaultSettings,
  FaultSettingsError,
  MALFORMED_KINDS,
} from './faults.js';
import type { SimulatorOptions } from './simulator.js';
import type { ListSeed } from './store.js';

/** A bad `verbose-sync simulator` command line; the CLI answers it with its usage and exit code 2. */
export class SimulatorArgsError extends Error {
  override name = 'SimulatorArgsError';
  /** Shaped like node:util parseArgs errors' codes, which the CLI already treats as usage errors. */
  readonly code = 'ERR_PARSE_ARGS_SIMULATOR';
}

type Fault = keyof typeof FAULT_RULES;

interface OptionDeclaration {
  flag: string;
  value: string;
  description: string;
  multiple?: boolean;
  /** Sets the option from its text(s); throws with a message that names the flag. */
  apply(values: string[], options: SimulatorOptions, now: number): void;
}

const numberFlag = (flag: string, text: string): number => {
  const value = text.trim() === '' ? Number.NaN : Number(text);
  if (Number.isNaN(value)) throw new SimulatorArgsError(`--${flag} must be a number, got "${text}"`);
  return value;
};

const last = (values: string[]): string => values[values.length - 1] ?? '';

function faultFlag(flag: string, fault: Fault, value: string, description: string): OptionDeclaration {
  return {
    flag,
    value,
    description,
    apply(values, options) {
      const raw = last(values);
      const parsed = fault === 'revokeAt' && !/^\d+$/.test(raw) ? raw : numberFlag(flag, raw);
      setFault(options, fault, FAULT_RULES[fault](parsed, `--${flag}`));
    },
  };
}

function setFault<K extends Fault>(options: SimulatorOptions, fault: K, value: FaultSettings[K]): void {
  options.faults = { ...options.faults, [fault]: value } satisfies FaultChanges;
}

/** Every option of `verbose-sync simulator`, documented where it is declared. */
const DECLARATIONS: readonly OptionDeclaration[] = [
  {
    flag: 'port',
    value: 'N',
    description: 'port to listen on (default: 0, a free port)',
    apply(values, options) {
      const port = numberFlag('port', last(values));
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new SimulatorArgsError(`--port must be a whole number from 0 to 65535, got "${last(values)}"`);
      }
      options.port = port;
    },
  },
  {
    flag: 'host',
    value: 'HOST',
    description: 'address to listen on (default: 127.0.0.1)',
    apply(values, options) {
      options.host = nonEmpty('host', last(values));
    },
  },
  {
    flag: 'api-key',
    value: 'KEY',
    description: 'the one API key accepted (default: as_test_key)',
    apply(values, options) {
      options.apiKey = nonEmpty('api-key', last(values));
    },
  },
  {
    flag: 'list',
    value: 'ID=NAME',
    description: 'a list that exists from the start, for configs using list_id (repeatable)',
    multiple: true,
    apply(values, options) {
      options.lists = values.map(listSeed);
      const ids = new Set(options.lists.map((list) => list.id));
      const names = new Set(options.lists.map((list) => list.name));
      if (ids.size !== values.length || names.size !== values.length) {
        throw new SimulatorArgsError('--list: each list id and each list name may be given only once');
      }
    },
  },
  faultFlag(
    'rate-limit',
    'rateLimitPerSecond',
    'N',
    'requests per second allowed, beyond that 429 (token bucket)',
  ),
  faultFlag('error-rate', 'errorRate', '0..1', 'fraction of requests answered 500, nothing stored'),
  faultFlag(
    'html-error-rate',
    'htmlErrorRate',
    '0..1',
    'fraction of requests answered 502 with an HTML page',
  ),
  faultFlag(
    'drop-rate',
    'dropRate',
    '0..1',
    'fraction of connections destroyed before the request is handled',
  ),
  faultFlag(
    'lost-response-rate',
    'lostResponseRate',
    '0..1',
    'fraction of connections destroyed after the request is handled (stored, not answered)',
  ),
  faultFlag(
    'malformed-rate',
    'malformedRate',
    '0..1',
    'fraction of requests given a --malformed-kind answer instead of being handled, nothing stored',
  ),
  {
    flag: 'malformed-kind',
    value: 'KIND',
    description: `the malformed answer: ${MALFORMED_KINDS.join(', ')} (default: empty)`,
    apply(values, options) {
      setFault(options, 'malformedKind', FAULT_RULES.malformedKind(last(values), '--malformed-kind'));
    },
  },
  faultFlag('latency-ms', 'latencyMs', 'MS', 'latency added to every request'),
  faultFlag('latency-jitter-ms', 'latencyJitterMs', 'MS', 'random extra latency, 0..MS'),
  faultFlag('max-batch-size', 'maxBatchSize', 'N', 'more contacts than this in one request: 413'),
  faultFlag('max-body-bytes', 'maxBodyBytes', 'N', 'a longer body: 413 (Vercel caps bodies at 4500000)'),
  faultFlag('revoke-at', 'revokeAt', 'TIME', 'revoke the key at this ISO 8601 time or epoch milliseconds'),
  {
    flag: 'revoke-after-ms',
    value: 'MS',
    description: 'revoke the key this long after start',
    apply(values, options, now) {
      const delay = numberFlag('revoke-after-ms', last(values));
      if (delay < 0)
        throw new SimulatorArgsError(`--revoke-after-ms must be 0 or more, got "${last(values)}"`);
      setFault(options, 'revokeAt', now + delay);
    },
  },
];

const FLAGS = DECLARATIONS.map((declaration) => `--${declaration.flag}`);

/** The options part of `verbose-sync simulator --help`. */
export const SIMULATOR_USAGE = [
  'verbose-sync simulator [options]   # a local Verbose API stand-in, with faults on demand',
  '',
  ...DECLARATIONS.map((d) => `  ${`--${d.flag} ${d.value}`.padEnd(28)}${d.description}`),
  '',
  'While running: GET /_simulator/state, GET /_simulator/requests, POST /_simulator/faults (JSON),',
  'POST /_simulator/revoke, POST /_simulator/reset.',
].join('\n');

/**
 * Parses the arguments after `simulator` into SimulatorOptions. Throws a SimulatorArgsError naming the
 * option on an unknown option, a missing value or a bad value. `now` anchors `--revoke-after-ms`.
 */
export function parseSimulatorArgs(argv: string[], now: number = Date.now()): SimulatorOptions {
  const { tokens } = parseArgs({
    args: argv,
    options: Object.fromEntries(
      DECLARATIONS.map((d) => [d.flag, { type: 'string' as const, multiple: d.multiple ?? false }]),
    ),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const values = new Map<OptionDeclaration, string[]>();
  for (const token of tokens) {
    if (token.kind === 'positional') {
      throw new SimulatorArgsError(
        `Unexpected argument "${token.value}"; valid options: ${FLAGS.join(', ')}`,
      );
    }
    if (token.kind !== 'option') continue;
    const declaration = DECLARATIONS.find((d) => d.flag === token.name);
    if (!declaration) {
      throw new SimulatorArgsError(`Unknown option ${token.rawName}; valid options: ${FLAGS.join(', ')}`);
    }
    if (token.value === undefined) {
      throw new SimulatorArgsError(`${token.rawName} needs a value: ${token.rawName} ${declaration.value}`);
    }
    values.set(declaration, [...(values.get(declaration) ?? []), token.value]);
  }
  const options: SimulatorOptions = {};
  for (const [declaration, texts] of values) {
    try {
      declaration.apply(texts, options, now);
    } catch (error) {
      if (error instanceof FaultSettingsError) throw new SimulatorArgsError(error.message);
      throw error;
    }
  }
  if (values.has(byFlag('revoke-at')) && values.has(byFlag('revoke-after-ms'))) {
    throw new SimulatorArgsError('Give either --revoke-at or --revoke-after-ms, not both');
  }
  return options;
}

function byFlag(flag: string): OptionDeclaration {
  return DECLARATIONS.find((d) => d.flag === flag)!;
}

function nonEmpty(flag: string, text: string): string {
  if (text.trim() === '') throw new SimulatorArgsError(`--${flag} must not be empty`);
  return text;
}

function listSeed(text: string): ListSeed {
  const at = text.indexOf('=');
  const id = text.slice(0, at).trim();
  const name = text.slice(at + 1).trim();
  if (at < 0 || id === '' || name === '') {
    throw new SimulatorArgsError(
      `--list must look like ID=NAME (e.g. --list lst_1="API leads"), got "${text}"`,
    );
  }
  return { id, name };
}
