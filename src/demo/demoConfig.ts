/** The demo's sync.yaml: the Odoo mapping, fast-moving delivery, and every port chosen by the system. */
export function demoConfigYaml(options: {
  databaseUrl: string;
  verboseUrl: string;
  apiKey: string;
  stateDir: string;
}): string {
  return `# Written by \`verbose-sync demo\`: the embedded PostgreSQL, the Verbose simulator, the sample CRM.
source:
  url: ${options.databaseUrl}
  slot: verbose_sync_demo
  publication: verbose_sync_demo
  status_interval_ms: 1000
  heartbeat_interval_ms: 5000
verbose:
  url: ${options.verboseUrl}
  api_key: ${options.apiKey}
  batch_size: 100
  flush_interval_ms: 300
  requests_per_second: 20
  concurrency: 2
phone:
  default_country: US
state_dir: ${options.stateDir}
shutdown_timeout_ms: 3000
http:
  host: 127.0.0.1
  port: 0
resync:
  chunk_size: 100
mappings:
  - table: public.res_partner
    where: { active: true, is_company: false }
    list: Demo contacts
    phone_country: { column: country_code }
    fields:
      phone: [mobile, phone]
      first_name: { column: name, transform: first_word }
      last_name: { column: name, transform: rest_words }
      source: { value: demo }
`;
}
