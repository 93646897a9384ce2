import type { z } from 'zod';
import type { fieldSchema } from '../config/schema.js';
import { type Row, UNCHANGED } from '../domain.js';
import { isBlank, stripControlCharacters, textOf, truncate } from './text.js';
import { applyTransforms } from './transforms.js';

/** A field as written in the configuration (`send_empty` may be left out). */
export type FieldSpecInput = z.input<typeof fieldSchema>;
type FieldObject = Exclude<FieldSpecInput, string | string[]>;

/**
 * What a field gives for one row: its text; `undefined` when it is empty (the contact leaves it out, so a blank
 * CRM field never clobbers Verbose); or `UNCHANGED` when a column it reads was not sent by the server (the value
 * is unknown, so the field is left out too, and neither `default` nor `send_empty` applies).
 */
export type FieldValue = string | undefined | typeof UNCHANGED;

function fieldObject(spec: FieldSpecInput): FieldObject {
  if (typeof spec === 'string') return { column: spec };
  if (Array.isArray(spec)) return { columns: spec };
  return spec;
}

/**
 * Evaluates a field against a row: the source value (column, first non-empty of columns, constant value or
 * template), control characters stripped, transforms applied in order, `default` when the result is empty,
 * outer white space trimmed (it is never meaningful in a contact) and the result cut to `MAX_VALUE_LENGTH`.
 */
export function evaluateField(spec: FieldSpecInput, row: Row): FieldValue {
  const field = fieldObject(spec);
  const source = sourceText(field, row);
  if (source === UNCHANGED) return UNCHANGED;
  let text = applyTransforms(source, field.transform).trim();
  if (text === '' && field.default !== undefined) text = field.default.trim();
  if (text === '') return field.send_empty === true ? '' : undefined;
  return truncate(text);
}

/** The columns a field reads, in the order it reads them. */
export function fieldColumns(spec: FieldSpecInput): string[] {
  const field = fieldObject(spec);
  if (field.column !== undefined) return [field.column];
  if (field.columns !== undefined) return [...field.columns];
  if (field.template !== undefined) return templateColumns(field.template);
  return [];
}

/** `"{first} {last}"` → `['first', 'last']`; names are taken as written (case-sensitive, camelCase kept). */
function templateColumns(template: string): string[] {
  return [...template.matchAll(/\{([^{}]+)\}/g)].map((match) => (match[1] ?? '').trim());
}

/** A short description of where a field reads from, for messages: `mobile, phone` or `"{a}{b}"`. */
export function describeField(spec: FieldSpecInput): string {
  const field = fieldObject(spec);
  if (field.template !== undefined) return JSON.stringify(field.template);
  if (field.value !== undefined) return `the constant ${JSON.stringify(field.value)}`;
  return fieldColumns(spec).join(', ');
}

function sourceText(field: FieldObject, row: Row): string | typeof UNCHANGED {
  if (field.value !== undefined) return stripControlCharacters(field.value);
  if (field.column !== undefined) return columnText(row, field.column);
  if (field.columns !== undefined) {
    for (const column of field.columns) {
      const text = columnText(row, column);
      // An unknown column might have been the non-empty one: the choice itself is unknown.
      if (text === UNCHANGED) return UNCHANGED;
      if (!isBlank(text)) return text;
    }
    return '';
  }
  if (field.template !== undefined) {
    let unknown = false;
    const text = field.template.replace(/\{([^{}]+)\}/g, (_, name: string) => {
      const value = columnText(row, name.trim());
      if (value === UNCHANGED) {
        unknown = true;
        return '';
      }
      return value;
    });
    // An empty column leaves a double or dangling space behind ("{first} {middle} {last}").
    return unknown ? UNCHANGED : text.replace(/ {2,}/g, ' ');
  }
  return '';
}

/** A column missing from the row reads as NULL: `validate` reports columns that do not exist. */
function columnText(row: Row, column: string): string | typeof UNCHANGED {
  const value = Object.hasOwn(row, column) ? row[column] : null;
  if (value === UNCHANGED) return UNCHANGED;
  return stripControlCharacters(textOf(value ?? null));
}
