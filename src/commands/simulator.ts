import { parseSimulatorArgs } from '../simulator/options.js';
import { startSimulator } from '../simulator/simulator.js';
import type { ShutdownHook } from './shutdown.js';

/** `verbose-sync simulator`: serves the Verbose stand-in until SIGTERM/SIGINT. */
export async function runSimulator(argv: string[], onShutdown: ShutdownHook): Promise<number> {
  const options = parseSimulatorArgs(argv);
  const simulator = await startSimulator({ ...options, port: options.port ?? 8787 });
  process.stdout.write(
    `Verbose simulator listening on ${simulator.url} (API key: ${options.apiKey ? 'as given' : 'as_test_key'})\n` +
      `Inspect what it holds: curl ${simulator.url}/_simulator/state\n`,
  );
  await new Promise<void>((resolve) =>
    onShutdown(async () => {
      await simulator.close();
      resolve();
    }),
  );
  return 0;
}
