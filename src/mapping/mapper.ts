import { type Config, type ListSpec, type Mapping, qualifiedTable } from '../config/schema.js';
import {
  CONTACT_FIELDS,
  type ContactChange,
  type ContactFields,
  type ListTarget,
  type Rejection,
  type Row,
  type RowChange,
  UNCHANGED,
} from '../domain.js';
import { describeField, evaluateField, fieldColumns } from './field.js';
import { matchesWhere } from './filter.js';
import { normalisePhone } from './phone.js';

/** What one mapping makes of one row change; `mapping` is the mapping's index in `config.mappings`. */
export type MappingOutcome =
  | { kind: 'contact'; mapping: number; contact: ContactChange }
  /** The row matched but cannot be a contact: kept with its reason for `verbose-sync rejects`. */
  | { kind: 'rejected'; mapping: number; rejection: Rejection }
  /** Verbose documents no delete and no list removal: these are logged and counted, never sent. */
  | { kind: 'skipped'; mapping: number; reason: 'delete' | 'truncate' | 'not_matching' };

/** A column a mapping reads, with the configuration path that names it (for `validate`). */
export interface ColumnReference {
  path: string;
  column: string;
}

interface TableMapping {
  index: number;
  mapping: Mapping;
}

/**
 * Turns row changes into Verbose contacts, following `config.mappings`. Pure: no I/O, no clock, no state
 * between calls, so the same change always gives the same outcomes.
 */
export class Mapper {
  private readonly byTable = new Map<string, TableMapping[]>();

  constructor(
    mappings: readonly Mapping[],
    private readonly defaultCountry: string,
  ) {
    mappings.forEach((mapping, index) => {
      const table = qualifiedTable(mapping.table);
      const list = this.byTable.get(table) ?? [];
      list.push({ index, mapping });
      this.byTable.set(table, list);
    });
  }

  static fromConfig(config: Pick<Config, 'mappings' | 'phone'>): Mapper {
    return new Mapper(config.mappings, config.phone.default_country);
  }

  /** The mapped tables as `schema.table`, each once, in the order they are first mapped. */
  tables(): string[] {
    return [...this.byTable.keys()];
  }

  /** Every column the mappings of a table read: fields, templates, where, list columns and phone_country. */
  columnsOf(table: string): string[] {
    const mappings = this.mappingsOf(table);
    return [...new Set(mappings.flatMap(({ mapping }) => columnReferences(mapping).map((r) => r.column)))];
  }

  /** One outcome per mapping of the change's table, in configuration order; none for an unmapped table. */
  map(change: RowChange): MappingOutcome[] {
    return this.mappingsOf(change.table).map(({ index, mapping }) => this.mapOne(index, mapping, change));
  }

  private mappingsOf(table: string): TableMapping[] {
    return this.byTable.get(table) ?? this.byTable.get(qualifiedTable(table)) ?? [];
  }

  private mapOne(index: number, mapping: Mapping, change: RowChange): MappingOutcome {
    if (change.op === 'delete' || change.op === 'truncate') {
      return { kind: 'skipped', mapping: index, reason: change.op };
    }
    const row = change.row ?? {};
    if (!matchesWhere(mapping.where, row)) return { kind: 'skipped', mapping: index, reason: 'not_matching' };

    const reject = (rawPhone: string, reason: string): MappingOutcome => ({
      kind: 'rejected',
      mapping: index,
      rejection: {
        origin: { table: change.table, key: change.key, rawPhone },
        reason,
        commitLsn: change.commitLsn,
      },
    });

    const rawPhone = evaluateField(mapping.fields.phone, row);
    if (rawPhone === UNCHANGED) {
      return reject(
        '',
        `the server did not send the phone (${describeField(mapping.fields.phone)}) because it was unchanged; ` +
          `run ALTER TABLE ${change.table} REPLICA IDENTITY FULL`,
      );
    }
    if (rawPhone === undefined || rawPhone === '') {
      return reject('', `empty phone (${describeField(mapping.fields.phone)})`);
    }

    const country =
      mapping.phone_country === undefined ? undefined : evaluateField(mapping.phone_country, row);
    if (country === UNCHANGED && !/^\s*(\+|00)/.test(rawPhone)) {
      return reject(
        rawPhone,
        `the server did not send the phone country (${describeField(mapping.phone_country ?? '')}) because it was ` +
          `unchanged; run ALTER TABLE ${change.table} REPLICA IDENTITY FULL`,
      );
    }
    const phone = normalisePhone(rawPhone, country === UNCHANGED ? undefined : country, this.defaultCountry);
    if (!phone.ok) return reject(rawPhone, phone.reason);

    const target = listTarget(mapping, row, change.table);
    if ('reason' in target) return reject(rawPhone, target.reason);

    const fields: ContactFields = {};
    for (const name of CONTACT_FIELDS) {
      const spec = mapping.fields[name];
      if (spec === undefined) continue;
      const value = evaluateField(spec, row);
      if (typeof value === 'string') fields[name] = value;
    }

    return {
      kind: 'contact',
      mapping: index,
      contact: {
        target: target.target,
        phone: phone.e164,
        fields,
        origin: { table: change.table, key: change.key, rawPhone },
        commitLsn: change.commitLsn,
        backfill: change.op === 'read',
      },
    };
  }
}

function listTarget(mapping: Mapping, row: Row, table: string): { target: ListTarget } | { reason: string } {
  const [kind, spec] =
    mapping.list_id !== undefined
      ? (['list_id', mapping.list_id] as const)
      : (['list', mapping.list] as const);
  if (spec === undefined) return { target: {} };
  const name = listName(spec, row);
  if (name === UNCHANGED) {
    return {
      reason: `the server did not send the list column ${describeListSpec(spec)} because it was unchanged; run ALTER TABLE ${table} REPLICA IDENTITY FULL`,
    };
  }
  if (name === undefined) {
    return { reason: `${kind} column ${describeListSpec(spec)} is empty and no default is given` };
  }
  return { target: kind === 'list_id' ? { list_id: name } : { list: name } };
}

function listName(spec: ListSpec, row: Row): string | undefined | typeof UNCHANGED {
  if (typeof spec === 'string') return spec;
  const value = evaluateField({ column: spec.column }, row);
  if (value === UNCHANGED) return UNCHANGED;
  return value ?? spec.default;
}

function describeListSpec(spec: ListSpec): string {
  return typeof spec === 'string' ? spec : spec.column;
}

/** Every column a mapping reads, with the path of the key that names it. */
export function columnReferences(mapping: Mapping): ColumnReference[] {
  const references: ColumnReference[] = [];
  for (const [name, spec] of Object.entries(mapping.fields)) {
    if (spec === undefined) continue;
    for (const column of fieldColumns(spec)) references.push({ path: `fields.${name}`, column });
  }
  if (mapping.phone_country !== undefined) {
    for (const column of fieldColumns(mapping.phone_country))
      references.push({ path: 'phone_country', column });
  }
  for (const column of Object.keys(mapping.where ?? {})) references.push({ path: `where.${column}`, column });
  for (const key of ['list', 'list_id'] as const) {
    const spec = mapping[key];
    if (spec !== undefined && typeof spec !== 'string') {
      references.push({ path: `${key}.column`, column: spec.column });
    }
  }
  return references;
}
