/** Installed by the CLI: calls `stop` on the first SIGTERM/SIGINT; a second signal exits at once. */
export type ShutdownHook = (stop: (signal: NodeJS.Signals) => Promise<void>) => void;
