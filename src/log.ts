import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** Values scrubbed from every line, wherever they appear (messages, errors, URLs): the API key, the DB password. */
  secrets?: readonly string[];
  level?: string;
  destination?: DestinationStream;
}

const REDACTED = '[redacted]';

/**
 * pino JSON on stdout. Secrets are removed from the serialised line itself, so an error message or a URL that
 * quotes one is scrubbed too, not only the fields we thought of.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const scrub = scrubber(options.secrets ?? []);
  return pino(
    {
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      base: { service: 'verbose-sync' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ['*.authorization', '*.Authorization', '*.headers.authorization', 'api_key', '*.api_key'],
        censor: REDACTED,
      },
      hooks: { streamWrite: scrub },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** Replaces each secret, raw or as JSON escapes it or as a URL encodes it, and any Bearer token, with a marker. */
export function scrubber(secrets: readonly string[]): (text: string) => string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    forms.add(secret);
    forms.add(JSON.stringify(secret).slice(1, -1));
    forms.add(encodeURIComponent(secret));
  }
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text.replace(/(Bearer\s+)[^\s"'\\]+/gi, `$1${REDACTED}`);
    for (const form of ordered) out = out.split(form).join(REDACTED);
    return out;
  };
}
