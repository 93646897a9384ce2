import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

/** A destination for a JSON-lines logger that parses each line into `lines` instead of printing it. */
export function parsedLinesInto(lines: Record<string, unknown>[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
}

/** The daemon's own logger at debug level, its lines parsed into `lines` for assertions. */
export function loggerInto(lines: Record<string, unknown>[]): Logger {
  return createLogger({ level: 'debug', destination: parsedLinesInto(lines) });
}
