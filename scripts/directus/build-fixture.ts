/**
 * Builds `test/fixtures/directus-real/directus-11.sql`: a database written by a
 * real Directus 11 (see install.ts for the version), its data model created
 * THROUGH THE REST API the way the Data Studio does it, for a small
 * publisher with a magazine and a web shop ("Lantern Press"). Then, by SQL
 * (production has them as DB-only tables), the governance proposal tables
 * and the proposal `OS-AXIS` with a payload derived from the database's own
 * metadata; no approvals. Finally pg_dump, a reload check into an empty
 * database `directus` with `psql -v ON_ERROR_STOP=1`, and `expected.json`.
 *
 *   node --import tsx scripts/directus/build-fixture.ts [--out DIR] [--server URL] [--verbose]
 *
 * `--server URL`: a PostgreSQL server where we may CREATE DATABASE (default:
 * a throwaway cluster from scripts/pg-cluster.ts). Everything started is
 * stopped at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import {
  attachAccess,
  createCollection,
  createField,
  createItems,
  createPermissions,
  createPolicy,
  createRelation,
  createRole,
  createUser,
  ok,
  withDirectus,
  type Api,
  type DirectusServer,
} from './server.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');

/** Test-only credentials; they are in test/fixtures/directus-real/README.md too. */
export const USERS = {
  admin: { email: 'admin@example.com', password: 'tiergate-admin' },
  approver: { email: 'approver@example.com', password: 'tiergate-approver' },
  editor: { email: 'editor@example.com', password: 'tiergate-editor' },
  suspended: { email: 'suspended@example.com', password: 'tiergate-suspended' },
  author: { email: 'author@example.com', password: 'tiergate-author' },
} as const;

// ---- Data Studio payloads ------------------------------------------------------------------------

type Json = Record<string, unknown>;
type Pk = 'auto_int' | 'uuid' | 'manual';
interface SystemFields {
  status?: boolean;
  sort?: boolean;
  userCreated?: boolean;
  dateCreated?: boolean;
  userUpdated?: boolean;
  dateUpdated?: boolean;
}
const ALL_SYSTEM: SystemFields = { status: true, sort: true, userCreated: true, dateCreated: true, userUpdated: true, dateUpdated: true };

/** The primary key the Data Studio's "new collection" drawer posts (new-collection.vue). */
function pkField(pk: Pk, name = 'id'): Json {
  if (pk === 'uuid') return { field: name, type: 'uuid', meta: { hidden: true, readonly: true, interface: 'input', special: ['uuid'] }, schema: { is_primary_key: true, length: 36, has_auto_increment: false } };
  if (pk === 'manual') return { field: name, type: 'string', meta: { interface: 'input', readonly: false, hidden: false }, schema: { is_primary_key: true, length: 255, has_auto_increment: false } };
  return { field: name, type: 'integer', meta: { hidden: true, interface: 'input', readonly: true }, schema: { is_primary_key: true, has_auto_increment: true } };
}

const STATUS_CHOICES = [
  { text: '$t:published', value: 'published', color: 'var(--theme--primary)' },
  { text: '$t:draft', value: 'draft', color: 'var(--theme--foreground)' },
  { text: '$t:archived', value: 'archived', color: 'var(--theme--warning)' },
];

/** The optional system fields of the Data Studio, exactly as it posts them. */
function systemFields(s: SystemFields): Json[] {
  const out: Json[] = [];
  if (s.status) {
    out.push({
      field: 'status',
      type: 'string',
      meta: {
        width: 'full',
        options: { choices: STATUS_CHOICES },
        interface: 'select-dropdown',
        display: 'labels',
        display_options: {
          showAsDot: true,
          choices: [
            { text: '$t:published', value: 'published', color: 'var(--theme--primary)', foreground: 'var(--theme--primary)', background: 'var(--theme--primary-background)' },
            { text: '$t:draft', value: 'draft', color: 'var(--theme--foreground)', foreground: 'var(--theme--foreground)', background: 'var(--theme--background-normal)' },
            { text: '$t:archived', value: 'archived', color: 'var(--theme--warning)', foreground: 'var(--theme--warning)', background: 'var(--theme--warning-background)' },
          ],
        },
      },
      schema: { default_value: 'draft', is_nullable: false },
    });
  }
  if (s.sort) out.push({ field: 'sort', type: 'integer', meta: { interface: 'input', hidden: true }, schema: {} });
  const user = (field: string, special: string) => ({
    field,
    type: 'uuid',
    meta: { special: [special], interface: 'select-dropdown-m2o', options: { template: '{{avatar}} {{first_name}} {{last_name}}' }, display: 'user', readonly: true, hidden: true, width: 'half' },
    schema: {},
  });
  const date = (field: string, special: string) => ({
    field,
    type: 'timestamp',
    meta: { special: [special], interface: 'datetime', readonly: true, hidden: true, width: 'half', display: 'datetime', display_options: { relative: true } },
    schema: {},
  });
  if (s.userCreated) out.push(user('user_created', 'user-created'));
  if (s.dateCreated) out.push(date('date_created', 'date-created'));
  if (s.userUpdated) out.push(user('user_updated', 'user-updated'));
  if (s.dateUpdated) out.push(date('date_updated', 'date-updated'));
  return out;
}

// field shorthands (what the field drawer posts for each interface)
const str = (field: string, extra: { required?: boolean; unique?: boolean; note?: string; width?: string; group?: string; options?: Json; length?: number } = {}): Json => ({
  field,
  type: 'string',
  meta: { interface: 'input', required: extra.required ?? false, width: extra.width ?? 'full', note: extra.note ?? null, group: extra.group ?? null, options: extra.options ?? null },
  schema: { is_nullable: !extra.required, is_unique: extra.unique ?? false, ...(extra.length ? { max_length: extra.length } : {}) },
});
const text = (field: string, iface = 'input-multiline', extra: { group?: string } = {}): Json => ({
  field,
  type: 'text',
  meta: { interface: iface, group: extra.group ?? null, ...(iface === 'input-rich-text-html' ? { options: { toolbar: ['bold', 'italic', 'h2', 'h3', 'numlist', 'bullist', 'link', 'code'] } } : {}) },
  schema: {},
});
const int = (field: string, extra: { width?: string; required?: boolean; iface?: string; options?: Json; group?: string; default?: number } = {}): Json => ({
  field,
  type: 'integer',
  meta: { interface: extra.iface ?? 'input', width: extra.width ?? 'half', required: extra.required ?? false, options: extra.options ?? null, group: extra.group ?? null },
  schema: { is_nullable: !extra.required, ...(extra.default !== undefined ? { default_value: extra.default } : {}) },
});
const money = (field: string, extra: { group?: string } = {}): Json => ({
  field,
  type: 'decimal',
  meta: { interface: 'input', width: 'half', options: { min: 0 }, display: 'formatted-value', display_options: { format: true }, group: extra.group ?? null },
  schema: { numeric_precision: 10, numeric_scale: 2 },
});
const date = (field: string, type: 'date' | 'timestamp' | 'dateTime' = 'date', extra: { group?: string } = {}): Json => ({
  field,
  type,
  meta: { interface: 'datetime', width: 'half', display: 'datetime', group: extra.group ?? null },
  schema: {},
});
const bool = (field: string, def = false): Json => ({
  field,
  type: 'boolean',
  meta: { interface: 'boolean', special: ['cast-boolean'], width: 'half', display: 'boolean' },
  schema: { default_value: def, is_nullable: false },
});
const dropdown = (field: string, choices: string[], def?: string): Json => ({
  field,
  type: 'string',
  meta: { interface: 'select-dropdown', width: 'half', options: { choices: choices.map((c) => ({ text: c.replace(/_/g, ' '), value: c })) }, display: 'labels' },
  schema: def === undefined ? {} : { default_value: def },
});
const tags = (field: string): Json => ({ field, type: 'json', meta: { interface: 'tags', special: ['cast-json'], width: 'full', display: 'labels' }, schema: {} });
const groupDetail = (field: string, start: 'open' | 'closed' = 'open'): Json => ({
  field,
  type: 'alias',
  meta: { interface: 'group-detail', special: ['alias', 'no-data', 'group'], options: { start, headerIcon: 'tune' } },
});
const divider = (field: string, title: string): Json => ({
  field,
  type: 'alias',
  meta: { interface: 'presentation-divider', special: ['alias', 'no-data'], options: { title, icon: 'segment' }, width: 'full' },
});

/** A collection as the "new collection" drawer creates it, then its fields one by one (the field drawer). */
async function newCollection(api: Api, name: string, opts: { pk?: Pk; system?: SystemFields; meta?: Json; fields?: Json[] }): Promise<void> {
  const s = opts.system ?? {};
  await createCollection(api, {
    collection: name,
    fields: [pkField(opts.pk ?? 'auto_int'), ...systemFields(s)],
    schema: {},
    meta: {
      sort_field: s.sort ? 'sort' : undefined,
      archive_field: s.status ? 'status' : undefined,
      archive_value: s.status ? 'archived' : undefined,
      unarchive_value: s.status ? 'draft' : undefined,
      singleton: false,
      ...opts.meta,
    },
  });
  for (const field of ['user_created', 'user_updated'] as const) {
    if ((field === 'user_created' && s.userCreated) || (field === 'user_updated' && s.userUpdated)) {
      await createRelation(api, { collection: name, field, related_collection: 'directus_users', schema: {} });
    }
  }
  for (const f of opts.fields ?? []) await createField(api, name, f);
}

/** M2O: the FK field, optionally the O2M alias on the other side ("create corresponding field"), the relation. */
async function m2o(
  api: Api,
  collection: string,
  field: string,
  related: string,
  opts: { type?: string; template?: string; oneField?: string; onDelete?: string; width?: string; required?: boolean; iface?: string; special?: string[]; display?: string } = {},
): Promise<void> {
  await createField(api, collection, {
    field,
    type: opts.type ?? 'integer',
    meta: {
      interface: opts.iface ?? 'select-dropdown-m2o',
      special: opts.special ?? ['m2o'],
      width: opts.width ?? 'half',
      required: opts.required ?? false,
      options: opts.template ? { template: opts.template } : null,
      display: opts.display ?? 'related-values',
      display_options: opts.template ? { template: opts.template } : null,
    },
    schema: {},
  });
  if (opts.oneField) await createField(api, related, { field: opts.oneField, type: 'alias', meta: { interface: 'list-o2m', special: ['o2m'], options: { enableLink: true } } });
  await createRelation(api, {
    collection,
    field,
    related_collection: related,
    meta: { one_field: opts.oneField ?? null, sort_field: null, one_deselect_action: 'nullify' },
    schema: { on_delete: opts.onDelete ?? 'SET NULL' },
  });
}

/** A single file (M2O to directus_files). */
const fileField = (api: Api, collection: string, field: string, iface = 'file-image') =>
  m2o(api, collection, field, 'directus_files', { type: 'uuid', iface, special: ['file'], display: iface === 'file-image' ? 'image' : 'file' });

/**
 * O2M from `parent.alias` to `child.fk` (the field drawer's O2M): the FK field
 * on the child (hidden), the alias, the relation; `deleteOnDeselect` makes it
 * a composition (`one_deselect_action = 'delete'`).
 */
async function o2m(api: Api, parent: string, alias: string, child: string, fk: string, opts: { fkType: string; deleteOnDeselect?: boolean; sortField?: string; onDelete?: string; template?: string }): Promise<void> {
  await createField(api, parent, { field: alias, type: 'alias', meta: { interface: 'list-o2m', special: ['o2m'], options: { template: opts.template ?? null, enableSelect: !opts.deleteOnDeselect } } });
  await createField(api, child, { field: fk, type: opts.fkType, schema: {}, meta: { hidden: true } });
  await createRelation(api, {
    collection: child,
    field: fk,
    related_collection: parent,
    meta: { one_field: alias, sort_field: opts.sortField ?? null, one_deselect_action: opts.deleteOnDeselect ? 'delete' : 'nullify' },
    schema: { on_delete: opts.onDelete ?? 'SET NULL' },
  });
}

/**
 * M2M the way the Data Studio saves it (field-detail store, m2m.ts): the
 * alias (special m2m), the hidden junction collection `${a}_${b}` (icon
 * import_export) with its id, the two hidden FK fields, the two relations
 * naming each other in `junction_field`. `related` may be directus_files
 * (the "files" interface).
 */
async function m2m(
  api: Api,
  collection: string,
  alias: string,
  related: string,
  opts: { pkType: string; relatedPkType: string; relatedPk?: string; files?: boolean; junction?: string; onDelete?: string; template?: string; sortField?: string },
): Promise<string> {
  const junction = opts.junction ?? `${collection}_${related}`;
  const current = `${collection}_id`;
  const other = `${related}_${opts.relatedPk ?? 'id'}`;
  await createField(api, collection, {
    field: alias,
    type: 'alias',
    meta: opts.files
      ? { interface: 'files', special: ['files'], options: null, display: 'related-values' }
      : { interface: 'list-m2m', special: ['m2m'], options: { template: opts.template ?? null }, display: 'related-values', display_options: { template: opts.template ?? null } },
  });
  await createCollection(api, { collection: junction, meta: { hidden: true, icon: 'import_export' }, schema: { name: junction }, fields: [{ field: 'id', type: 'integer', schema: { has_auto_increment: true }, meta: { hidden: true } }] });
  await createField(api, junction, { collection: junction, field: current, type: opts.pkType, schema: {}, meta: { hidden: true } });
  await createField(api, junction, { collection: junction, field: other, type: opts.relatedPkType, schema: {}, meta: { hidden: true } });
  if (opts.sortField) await createField(api, junction, { collection: junction, field: opts.sortField, type: 'integer', schema: {}, meta: { hidden: true } });
  await createRelation(api, {
    collection: junction,
    field: current,
    related_collection: collection,
    meta: { one_field: alias, sort_field: opts.sortField ?? null, one_deselect_action: 'nullify', junction_field: other },
    schema: { on_delete: opts.onDelete ?? 'SET NULL' },
  });
  await createRelation(api, {
    collection: junction,
    field: other,
    related_collection: related,
    meta: { one_field: null, sort_field: null, one_deselect_action: 'nullify', junction_field: current },
    schema: { on_delete: opts.onDelete ?? 'SET NULL' },
  });
  return junction;
}

const LANGUAGES = [
  { code: 'en-US', name: 'English', direction: 'ltr' },
  { code: 'ar-SA', name: 'Arabic', direction: 'rtl' },
  { code: 'de-DE', name: 'German', direction: 'ltr' },
  { code: 'fr-FR', name: 'French', direction: 'ltr' },
  { code: 'ru-RU', name: 'Russian', direction: 'ltr' },
  { code: 'es-ES', name: 'Spanish', direction: 'ltr' },
  { code: 'it-IT', name: 'Italian', direction: 'ltr' },
  { code: 'pt-BR', name: 'Portuguese', direction: 'ltr' },
];

/**
 * Translations the way the Data Studio does it (translations.ts): the alias,
 * `languages` (code PK, name, direction; seeded with its 8 languages) when
 * missing, the hidden junction `${collection}_translations` with
 * `${collection}_id` and `languages_code`, the two relations.
 */
async function translations(api: Api, collection: string, pkType: string, translatedFields: Json[]): Promise<string> {
  const junction = `${collection}_translations`;
  await createField(api, collection, { field: 'translations', type: 'alias', meta: { interface: 'translations', special: ['translations'], options: { languageField: 'name', defaultOpenSplitView: false } } });
  const existing = await api.get('/collections/languages');
  if (existing.status !== 200) {
    await createCollection(api, {
      collection: 'languages',
      meta: {},
      schema: { name: 'languages' },
      fields: [
        { field: 'code', type: 'string', schema: { is_primary_key: true }, meta: {} },
        { field: 'name', type: 'string', schema: {}, meta: {} },
        {
          field: 'direction',
          type: 'string',
          schema: { default_value: 'ltr' },
          meta: {
            interface: 'select-dropdown',
            options: { choices: [{ text: '$t:left_to_right', value: 'ltr' }, { text: '$t:right_to_left', value: 'rtl' }] },
            display: 'labels',
            display_options: { choices: [{ text: '$t:left_to_right', value: 'ltr' }, { text: '$t:right_to_left', value: 'rtl' }], format: false },
          },
        },
      ],
    });
  }
  await createCollection(api, { collection: junction, meta: { hidden: true, icon: 'import_export' }, schema: { name: junction }, fields: [{ field: 'id', type: 'integer', schema: { has_auto_increment: true }, meta: { hidden: true } }] });
  await createField(api, junction, { field: `${collection}_id`, type: pkType, schema: {}, meta: { hidden: true } });
  await createField(api, junction, { field: 'languages_code', type: 'string', schema: {}, meta: { hidden: true } });
  await createRelation(api, {
    collection: junction,
    field: `${collection}_id`,
    related_collection: collection,
    meta: { one_field: 'translations', sort_field: null, one_deselect_action: 'nullify', junction_field: 'languages_code' },
    schema: { on_delete: 'SET NULL' },
  });
  await createRelation(api, {
    collection: junction,
    field: 'languages_code',
    related_collection: 'languages',
    meta: { one_field: null, sort_field: null, one_deselect_action: 'nullify', junction_field: `${collection}_id` },
    schema: { on_delete: 'SET NULL' },
  });
  if (existing.status !== 200) await createItems(api, 'languages', LANGUAGES);
  for (const f of translatedFields) await createField(api, junction, f);
  return junction;
}

/**
 * M2A (builder): alias special m2a, junction `${collection}_${alias}` with
 * `${collection}_id`, `item`, `collection`, `sort`; the item relation has no
 * one_collection and lists the allowed collections.
 */
async function m2a(api: Api, collection: string, alias: string, pkType: string, allowed: string[]): Promise<string> {
  const junction = `${collection}_${alias}`;
  await createField(api, collection, { field: alias, type: 'alias', meta: { interface: 'list-m2a', special: ['m2a'], options: {} } });
  await createCollection(api, { collection: junction, meta: { hidden: true, icon: 'import_export' }, schema: { name: junction }, fields: [{ field: 'id', type: 'integer', schema: { has_auto_increment: true }, meta: { hidden: true } }] });
  await createField(api, junction, { field: `${collection}_id`, type: pkType, schema: {}, meta: { hidden: true } });
  await createField(api, junction, { field: 'item', type: 'string', schema: {}, meta: { hidden: true } });
  await createField(api, junction, { field: 'collection', type: 'string', schema: {}, meta: { hidden: true } });
  await createField(api, junction, { field: 'sort', type: 'integer', schema: {}, meta: { hidden: true } });
  await createRelation(api, {
    collection: junction,
    field: `${collection}_id`,
    related_collection: collection,
    meta: { one_field: alias, sort_field: 'sort', one_deselect_action: 'nullify', junction_field: 'item' },
    schema: { on_delete: 'SET NULL' },
  });
  await createRelation(api, {
    collection: junction,
    field: 'item',
    related_collection: null,
    meta: { one_field: null, sort_field: null, one_deselect_action: 'nullify', one_allowed_collections: allowed, one_collection_field: 'collection', junction_field: `${collection}_id` },
    schema: null,
  });
  return junction;
}

// ---- the data model -----------------------------------------------------------------------------

/** Folders: [name, parent, icon, sort, collapse]. `archive` is the lifecycle facet. */
const FOLDERS: [string, string | null, string, number, string][] = [
  ['publishing', null, 'menu_book', 1, 'open'],
  ['magazine', 'publishing', 'newspaper', 20, 'open'],
  ['shop', null, 'storefront', 2, 'open'],
  ['fulfilment', 'shop', 'local_shipping', 20, 'closed'],
  ['community', null, 'forum', 3, 'open'],
  ['archive', null, 'inventory_2', 9, 'closed'],
];

async function buildModel(api: Api, log: (s: string) => void): Promise<void> {
  for (const [name, group, icon, sort, collapse] of FOLDERS) {
    await createCollection(api, { collection: name, schema: null, meta: { icon, sort, group, collapse, color: null, note: null, hidden: false, singleton: false } });
  }
  log('folders created');

  // publishing
  await newCollection(api, 'publishers', {
    system: { dateCreated: true, dateUpdated: true },
    meta: { group: 'publishing', sort: 1, icon: 'corporate_fare', display_template: '{{name}}' },
    fields: [str('name', { required: true }), str('city', { width: 'half' }), str('website', { width: 'half', options: { iconLeft: 'link' } }), int('founded')],
  });
  await newCollection(api, 'writers', {
    system: { status: true, sort: true, userCreated: true, dateCreated: true },
    meta: { group: 'publishing', sort: 2, icon: 'history_edu', display_template: '{{full_name}}' },
    fields: [str('full_name', { required: true }), str('pen_name', { width: 'half' }), date('born'), text('bio', 'input-rich-text-md')],
  });
  await fileField(api, 'writers', 'portrait');
  await newCollection(api, 'books', {
    pk: 'uuid',
    system: ALL_SYSTEM,
    meta: { group: 'publishing', sort: 3, icon: 'book_2', display_template: '{{title}}', accountability: 'all', versioning: true, preview_url: 'https://lantern-press.example/books/{{id}}?preview=true' },
    fields: [
      str('title', { required: true }),
      str('subtitle'),
      groupDetail('details'),
      str('isbn', { unique: true, width: 'half', group: 'details', length: 17 }),
      date('published_on', 'date', { group: 'details' }),
      int('page_count', { group: 'details' }),
      money('list_price', { group: 'details' }),
      text('blurb', 'input-rich-text-html'),
    ],
  });
  await m2o(api, 'books', 'publisher', 'publishers', { template: '{{name}}', oneField: 'books' });
  await fileField(api, 'books', 'cover');
  await m2m(api, 'books', 'writers', 'writers', { pkType: 'uuid', relatedPkType: 'integer', template: '{{writers_id.full_name}}' });
  await translations(api, 'books', 'uuid', [str('title'), text('blurb', 'input-rich-text-md')]);
  await newCollection(api, 'book_chapters', {
    system: { sort: true },
    meta: { group: 'publishing', sort: 4, icon: 'format_list_numbered', display_template: '{{number}}. {{title}}' },
    fields: [int('number', { required: true }), str('title', { required: true }), text('excerpt', 'input-rich-text-md')],
  });
  await o2m(api, 'books', 'chapters', 'book_chapters', 'book', { fkType: 'uuid', deleteOnDeselect: true, sortField: 'sort', onDelete: 'CASCADE', template: '{{number}}. {{title}}' });
  log('publishing created');

  // magazine (a folder inside publishing)
  await newCollection(api, 'issues', {
    system: { status: true, sort: true, dateCreated: true, dateUpdated: true },
    meta: { group: 'magazine', sort: 1, icon: 'auto_stories', display_template: 'No. {{number}} — {{title}}' },
    fields: [int('number', { required: true }), str('title', { required: true }), date('release_date'), str('theme', { width: 'half' })],
  });
  await fileField(api, 'issues', 'cover');
  await newCollection(api, 'block_quotes', {
    meta: { group: 'magazine', sort: 3, icon: 'format_quote', display_template: '{{attribution}}' },
    fields: [text('quote'), str('attribution')],
  });
  await newCollection(api, 'block_callouts', {
    meta: { group: 'magazine', sort: 4, icon: 'campaign', display_template: '{{heading}}' },
    fields: [str('heading'), text('body', 'input-rich-text-md'), dropdown('tone', ['info', 'warning', 'offer'], 'info')],
  });
  await newCollection(api, 'stories', {
    pk: 'uuid',
    system: ALL_SYSTEM,
    meta: { group: 'magazine', sort: 2, icon: 'article', display_template: '{{headline}}', accountability: 'all' },
    fields: [
      str('headline', { required: true }),
      str('slug', { unique: true, width: 'half', options: { slug: true, trim: true } }),
      date('published_at', 'timestamp'),
      text('standfirst'),
      divider('body_divider', 'Body'),
      text('body', 'input-rich-text-html'),
      tags('keywords'),
    ],
  });
  await m2o(api, 'stories', 'issue', 'issues', { template: 'No. {{number}}', oneField: 'stories' });
  await m2o(api, 'stories', 'writer', 'writers', { template: '{{full_name}}' });
  await m2m(api, 'stories', 'gallery', 'directus_files', { pkType: 'uuid', relatedPkType: 'uuid', files: true, junction: 'stories_files' });
  await m2a(api, 'stories', 'blocks', 'uuid', ['block_quotes', 'block_callouts']);
  log('magazine created');

  // shop
  await newCollection(api, 'shop_items', {
    pk: 'uuid',
    system: ALL_SYSTEM,
    meta: { group: 'shop', sort: 1, icon: 'sell', display_template: '{{name}} ({{sku}})' },
    fields: [str('sku', { required: true, unique: true, width: 'half' }), str('name', { required: true }), dropdown('kind', ['book', 'merch', 'gift_card'], 'book'), money('price'), int('stock', { default: 0 })],
  });
  await m2o(api, 'shop_items', 'book', 'books', { type: 'uuid', template: '{{title}}' });
  await fileField(api, 'shop_items', 'image');
  await newCollection(api, 'shoppers', {
    system: { dateCreated: true, dateUpdated: true },
    meta: { group: 'shop', sort: 2, icon: 'person', display_template: '{{display_name}} <{{email}}>' },
    fields: [str('email', { required: true, unique: true }), str('display_name', { width: 'half' }), str('country', { width: 'half', length: 2 }), bool('marketing_opt_in')],
  });
  await m2o(api, 'shoppers', 'account', 'directus_users', { type: 'uuid', template: '{{email}}', iface: 'select-dropdown-m2o', display: 'user' });
  await newCollection(api, 'vouchers', {
    system: { status: true, dateCreated: true },
    meta: { group: 'shop', sort: 4, icon: 'confirmation_number', display_template: '{{code}}' },
    fields: [str('code', { required: true, unique: true, width: 'half' }), int('percent_off', { options: { min: 1, max: 100 } }), date('valid_until')],
  });
  await newCollection(api, 'purchases', {
    system: { status: true, userCreated: true, dateCreated: true },
    meta: { group: 'shop', sort: 3, icon: 'shopping_bag', display_template: '{{reference}}' },
    fields: [str('reference', { required: true, unique: true, width: 'half' }), date('placed_at', 'timestamp'), money('total'), str('currency', { width: 'half', length: 3 })],
  });
  await m2o(api, 'purchases', 'shopper', 'shoppers', { template: '{{display_name}}' });
  await newCollection(api, 'purchase_lines', {
    system: { sort: true },
    meta: { group: 'shop', sort: 5, icon: 'receipt_long', display_template: '{{quantity}} × {{item.name}}' },
    fields: [int('quantity', { required: true, default: 1 }), money('unit_price')],
  });
  await m2o(api, 'purchase_lines', 'item', 'shop_items', { type: 'uuid', template: '{{name}}' });
  await o2m(api, 'purchases', 'lines', 'purchase_lines', 'purchase', { fkType: 'integer', deleteOnDeselect: true, sortField: 'sort', template: '{{quantity}} × {{item.name}}' });
  await m2m(api, 'purchases', 'vouchers', 'vouchers', { pkType: 'integer', relatedPkType: 'integer', template: '{{vouchers_id.code}}', onDelete: 'CASCADE' });

  // fulfilment (a folder inside shop)
  await newCollection(api, 'parcels', {
    system: { status: true, userCreated: true, dateCreated: true },
    meta: { group: 'fulfilment', sort: 1, icon: 'package_2', display_template: '{{carrier}} {{tracking_code}}' },
    fields: [dropdown('carrier', ['dhl', 'ups', 'royal_mail', 'la_poste']), str('tracking_code', { width: 'half' }), date('dispatched_at', 'timestamp')],
  });
  await m2o(api, 'parcels', 'purchase', 'purchases', { template: '{{reference}}', oneField: 'parcels' });
  log('shop created');

  // community
  await newCollection(api, 'reviews', {
    system: { status: true, userCreated: true, dateCreated: true },
    meta: { group: 'community', sort: 1, icon: 'reviews', display_template: '{{reviewer_name}}: {{rating}}/5' },
    fields: [str('reviewer_name', { width: 'half' }), int('rating', { iface: 'slider', options: { minValue: 1, maxValue: 5, stepInterval: 1 } }), text('body')],
  });
  await m2o(api, 'reviews', 'book', 'books', { type: 'uuid', template: '{{title}}', oneField: 'reviews' });
  await newCollection(api, 'book_clubs', {
    system: { status: true, sort: true, dateCreated: true },
    meta: { group: 'community', sort: 2, icon: 'groups', display_template: '{{name}} ({{city}})' },
    fields: [str('name', { required: true }), str('city', { width: 'half' }), str('meets_on', { width: 'half', note: 'e.g. first Tuesday of the month' }), str('contact_email')],
  });

  // archive (lifecycle facet)
  await newCollection(api, 'blog_posts_2019', {
    system: { status: true, dateCreated: true },
    meta: { group: 'archive', sort: 1, icon: 'history', note: 'Imported from the 2019 WordPress blog, read-only', display_template: '{{title}}' },
    fields: [str('title'), text('body', 'input-rich-text-html'), str('legacy_url')],
  });
  await newCollection(api, 'old_gift_cards', {
    meta: { group: 'archive', sort: 2, icon: 'redeem', note: 'Gift cards of the previous shop system', display_template: '{{code}}' },
    fields: [str('code', { unique: true }), money('balance'), date('issued_on')],
  });

  // root: a singleton
  await newCollection(api, 'site_config', {
    system: { userUpdated: true, dateUpdated: true },
    meta: { singleton: true, icon: 'settings', sort: 10 },
    fields: [str('site_title', { required: true }), str('tagline'), str('support_email', { width: 'half' }), bool('maintenance_mode')],
  });
  await m2o(api, 'site_config', 'default_language', 'languages', { type: 'string', template: '{{name}}' });
  await fileField(api, 'site_config', 'logo');
  log('community, archive, site_config created');
}

// ---- users, roles, policies ---------------------------------------------------------------------

const EDITOR_COLLECTIONS = ['publishers', 'writers', 'books', 'book_chapters', 'books_writers', 'books_translations', 'issues', 'stories', 'stories_files', 'stories_blocks', 'block_quotes', 'block_callouts', 'reviews', 'book_clubs'];
const SHOP_COLLECTIONS = ['shop_items', 'shoppers', 'purchases', 'purchase_lines', 'vouchers', 'purchases_vouchers', 'parcels'];

async function buildAccess(api: Api): Promise<Record<string, string>> {
  const adminRole = ok<{ id: string }[]>(await api.get('/roles', { 'filter[name][_eq]': 'Administrator' }), 'admin role')[0]!.id;
  const editorRole = (await createRole(api, { name: 'Editor', icon: 'edit_note', description: 'Writes and publishes books, stories and reviews' })).id as string;
  const editorPolicy = (await createPolicy(api, { name: 'Editor', icon: 'edit_note', description: 'Content of the publishing, magazine and community folders', admin_access: false, app_access: true })).id as string;
  const shopPolicy = (await createPolicy(api, { name: 'Shop desk', icon: 'storefront', description: 'Orders, parcels and vouchers', admin_access: false, app_access: false })).id as string;
  await attachAccess(api, { role: editorRole, policy: editorPolicy });
  const perms: Json[] = [];
  for (const c of EDITOR_COLLECTIONS) for (const action of ['create', 'read', 'update']) perms.push({ policy: editorPolicy, collection: c, action, fields: ['*'], permissions: {}, validation: {} });
  perms.push({ policy: editorPolicy, collection: 'stories', action: 'delete', fields: ['*'], permissions: { user_created: { _eq: '$CURRENT_USER' } } });
  for (const c of ['languages', 'shop_items', 'site_config']) perms.push({ policy: editorPolicy, collection: c, action: 'read', fields: ['*'], permissions: {} });
  for (const action of ['create', 'read']) perms.push({ policy: editorPolicy, collection: 'directus_files', action, fields: ['*'], permissions: {} });
  for (const c of SHOP_COLLECTIONS) for (const action of ['create', 'read', 'update']) perms.push({ policy: shopPolicy, collection: c, action, fields: ['*'], permissions: {}, validation: {} });
  await createPermissions(api, perms);

  const users: Record<string, string> = {};
  const me = ok<{ id: string }>(await api.get('/users/me'), 'me');
  users.admin = me.id;
  await api.patch('/users/me', { first_name: 'Ada', last_name: 'Admin', title: 'Technical lead' });
  users.approver = (await createUser(api, { ...USERS.approver, first_name: 'Ama', last_name: 'Approver', title: 'Publisher', role: adminRole, status: 'active' })).id;
  users.editor = (await createUser(api, { ...USERS.editor, first_name: 'Eli', last_name: 'Editor', title: 'Managing editor', role: editorRole, status: 'active' })).id;
  users.suspended = (await createUser(api, { ...USERS.suspended, first_name: 'Sam', last_name: 'Suspended', title: 'Former CTO', role: adminRole, status: 'suspended' })).id;
  users.author = (await createUser(api, { ...USERS.author, first_name: 'Ari', last_name: 'Author', title: 'Data architect', role: editorRole, status: 'active' })).id;
  // a policy attached to a user directly (a directus_access row with user, no role)
  await attachAccess(api, { user: users.editor, policy: shopPolicy });
  return { ...users, adminRole, editorRole, editorPolicy, shopPolicy };
}

// ---- content --------------------------------------------------------------------------------------

const PNG_1x1 = Uint8Array.from(Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64'));

async function buildContent(d: DirectusServer, admin: Api, log: (s: string) => void): Promise<void> {
  const folder = ok<{ id: string }>(await admin.post('/folders', { name: 'Covers' }), 'file folder').id;
  const files: string[] = [];
  for (const [i, title] of ['Lantern logo', 'Cover: The Salt Road', 'Cover: Night Ferries', 'Issue 12 cover', 'Reading at the harbour'].entries()) {
    const res = await admin.upload({ name: `${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.png`, type: 'image/png', data: PNG_1x1 }, { title, ...(i > 0 && i < 4 ? { folder } : {}) });
    files.push(ok<{ id: string }>(res, `upload ${title}`).id);
  }
  await admin.upload({ name: 'press-kit.md', type: 'text/markdown', data: '# Lantern Press\n\nPress kit.\n' }, { title: 'Press kit' });

  const publishers = ok<{ id: number }[]>(
    await admin.post('/items/publishers', [
      { name: 'Lantern Press', city: 'Bristol', website: 'https://lantern-press.example', founded: 2011 },
      { name: 'Harbour Lights Editions', city: 'Lisbon', website: 'https://harbour-lights.example', founded: 1998 },
      { name: 'Northwind Books', city: 'Bergen', founded: 2004 },
    ]),
    'publishers',
  );
  const writers = ok<{ id: number }[]>(
    await admin.post('/items/writers', [
      { full_name: 'Maren Solberg', pen_name: 'M. Sol', status: 'published', sort: 1, born: '1979-04-02', bio: 'Writes about coasts and ferries.', portrait: files[4] },
      { full_name: 'Tomás Ferreira', status: 'published', sort: 2, born: '1985-11-20', bio: 'Translator and essayist.' },
      { full_name: 'Priya Natarajan', status: 'published', sort: 3, born: '1990-01-15' },
      { full_name: 'Owen Hale', status: 'draft', sort: 4 },
    ]),
    'writers',
  );
  const w = writers.map((x) => x.id);

  // books: nested M2M, translations and the composition
  const books = ok<{ id: string }[]>(
    await admin.post('/items/books', [
      {
        title: 'The Salt Road',
        subtitle: 'Walking the old trade routes',
        status: 'published',
        sort: 1,
        isbn: '978-1-4028-9462-6',
        published_on: '2021-05-14',
        page_count: 312,
        list_price: '18.99',
        blurb: '<p>A walk from the salt pans to the mountains.</p>',
        publisher: publishers[0]!.id,
        cover: files[1],
        writers: [{ writers_id: w[0] }, { writers_id: w[1] }],
        translations: [
          { languages_code: 'en-US', title: 'The Salt Road', blurb: 'A walk from the salt pans to the mountains.' },
          { languages_code: 'de-DE', title: 'Die Salzstraße', blurb: 'Eine Wanderung von den Salinen in die Berge.' },
        ],
        chapters: [
          { number: 1, title: 'The Pans', sort: 1 },
          { number: 2, title: 'Mule Tracks', sort: 2 },
          { number: 3, title: 'The Pass', sort: 3 },
        ],
      },
      {
        title: 'Night Ferries',
        status: 'published',
        sort: 2,
        isbn: '978-0-306-40615-7',
        published_on: '2023-09-01',
        page_count: 208,
        list_price: '14.50',
        publisher: publishers[1]!.id,
        cover: files[2],
        writers: [{ writers_id: w[0] }],
        translations: [
          { languages_code: 'en-US', title: 'Night Ferries' },
          { languages_code: 'pt-BR', title: 'Balsas Noturnas' },
          { languages_code: 'fr-FR', title: 'Ferries de nuit' },
        ],
        chapters: [
          { number: 1, title: 'Departure', sort: 1 },
          { number: 2, title: 'Deck Four', sort: 2 },
        ],
      },
      {
        title: 'Small Data',
        subtitle: 'Notes on tidy catalogues',
        status: 'draft',
        sort: 3,
        isbn: '978-3-16-148410-0',
        page_count: 96,
        list_price: '9.00',
        publisher: publishers[0]!.id,
        writers: [{ writers_id: w[2] }],
        chapters: [{ number: 1, title: 'Why folders', sort: 1 }],
      },
    ]),
    'books',
  );
  const b = books.map((x) => x.id);
  log('publishing content created');

  const issues = ok<{ id: number }[]>(
    await admin.post('/items/issues', [
      { number: 11, title: 'Islands', release_date: '2024-03-01', theme: 'travel', status: 'published', sort: 1 },
      { number: 12, title: 'Harbours', release_date: '2024-06-01', theme: 'cities', status: 'published', sort: 2, cover: files[3] },
      { number: 13, title: 'Winter', status: 'draft', sort: 3 },
    ]),
    'issues',
  );
  await admin.post('/items/stories', [
    {
      headline: 'Ferry timetables as literature',
      slug: 'ferry-timetables',
      status: 'published',
      sort: 1,
      published_at: '2024-06-01T08:00:00Z',
      standfirst: 'What a timetable knows about a coast.',
      body: '<p>Every timetable is a map of patience.</p>',
      keywords: ['ferries', 'coasts'],
      issue: issues[1]!.id,
      writer: w[0],
      gallery: [{ directus_files_id: files[4] }, { directus_files_id: files[3] }],
      blocks: [
        { collection: 'block_quotes', sort: 1, item: { quote: 'The sea keeps its own hours.', attribution: 'Maren Solberg' } },
        { collection: 'block_callouts', sort: 2, item: { heading: 'Read the book', body: 'Night Ferries is out now.', tone: 'offer' } },
      ],
    },
    {
      headline: 'Ten islands, one notebook',
      slug: 'ten-islands',
      status: 'published',
      sort: 2,
      published_at: '2024-03-01T08:00:00Z',
      issue: issues[0]!.id,
      writer: w[1],
      keywords: ['islands'],
      blocks: [{ collection: 'block_quotes', sort: 1, item: { quote: 'Islands are sentences with full stops all round.', attribution: 'Tomás Ferreira' } }],
    },
  ]);

  // the editor and the author write too (user_created = them)
  const editorApi = d.api(await d.login(USERS.editor.email, USERS.editor.password));
  ok(
    await editorApi.post('/items/stories', {
      headline: 'Winter reading list',
      slug: 'winter-reading-list',
      status: 'draft',
      sort: 3,
      issue: issues[2]!.id,
      writer: w[2],
      blocks: [{ collection: 'block_callouts', sort: 1, item: { heading: 'Send us your list', body: 'Write to the editors.', tone: 'info' } }],
    }),
    'story by the editor',
  );
  ok(
    await editorApi.post('/items/reviews', [
      { reviewer_name: 'J. Okafor', rating: 5, body: 'Made me want to walk it.', book: b[0], status: 'published' },
      { reviewer_name: 'L. Brandt', rating: 4, body: 'Quiet and precise.', book: b[1], status: 'published' },
      { reviewer_name: 'anonymous', rating: 2, body: 'Too many ferries.', book: b[1], status: 'draft' },
    ]),
    'reviews by the editor',
  );
  const authorApi = d.api(await d.login(USERS.author.email, USERS.author.password));
  ok(
    await authorApi.post('/items/books', {
      title: 'Folders and Facets',
      status: 'draft',
      sort: 4,
      publisher: publishers[2]!.id,
      writers: [{ writers_id: w[3] }],
      translations: [{ languages_code: 'en-US', title: 'Folders and Facets' }],
      chapters: [{ number: 1, title: 'Axes', sort: 1 }],
    }),
    'book by the author',
  );
  await admin.post('/items/book_clubs', [
    { name: 'Harbour Readers', city: 'Bristol', meets_on: 'first Tuesday', contact_email: 'harbour@clubs.example', status: 'published', sort: 1 },
    { name: 'Lisbon Ferry Club', city: 'Lisbon', meets_on: 'every other Sunday', status: 'published', sort: 2 },
  ]);
  log('magazine and community content created');

  // shop
  const items = ok<{ id: string }[]>(
    await admin.post('/items/shop_items', [
      { sku: 'BK-SALT-HB', name: 'The Salt Road (hardback)', kind: 'book', price: '18.99', stock: 40, book: b[0], image: files[1], status: 'published', sort: 1 },
      { sku: 'BK-FERRY-PB', name: 'Night Ferries (paperback)', kind: 'book', price: '14.50', stock: 120, book: b[1], image: files[2], status: 'published', sort: 2 },
      { sku: 'MR-TOTE', name: 'Lantern tote bag', kind: 'merch', price: '12.00', stock: 75, status: 'published', sort: 3 },
      { sku: 'GC-25', name: 'Gift card 25', kind: 'gift_card', price: '25.00', stock: 999, status: 'draft', sort: 4 },
    ]),
    'shop items',
  );
  const approverId = ok<{ id: string }[]>(await admin.get('/users', { 'filter[email][_eq]': USERS.approver.email }), 'approver')[0]!.id;
  const shoppers = ok<{ id: number }[]>(
    await admin.post('/items/shoppers', [
      { email: 'kim@readers.example', display_name: 'Kim', country: 'GB', marketing_opt_in: true },
      { email: 'rui@readers.example', display_name: 'Rui', country: 'PT' },
      { email: 'ama@lantern-press.example', display_name: 'Ama (staff)', country: 'GB', account: approverId },
    ]),
    'shoppers',
  );
  const vouchers = ok<{ id: number }[]>(
    await admin.post('/items/vouchers', [
      { code: 'WELCOME10', percent_off: 10, valid_until: '2026-12-31', status: 'published' },
      { code: 'FERRY20', percent_off: 20, valid_until: '2025-01-31', status: 'archived' },
    ]),
    'vouchers',
  );
  const purchases = ok<{ id: number }[]>(
    await admin.post('/items/purchases', [
      {
        reference: 'LP-2024-0001',
        status: 'published',
        placed_at: '2024-06-03T10:12:00Z',
        total: '33.49',
        currency: 'GBP',
        shopper: shoppers[0]!.id,
        lines: [
          { item: items[0]!.id, quantity: 1, unit_price: '18.99', sort: 1 },
          { item: items[1]!.id, quantity: 1, unit_price: '14.50', sort: 2 },
        ],
        vouchers: [{ vouchers_id: vouchers[0]!.id }],
      },
      {
        reference: 'LP-2024-0002',
        status: 'published',
        placed_at: '2024-06-05T16:40:00Z',
        total: '24.00',
        currency: 'EUR',
        shopper: shoppers[1]!.id,
        lines: [{ item: items[2]!.id, quantity: 2, unit_price: '12.00', sort: 1 }],
      },
      { reference: 'LP-2024-0003', status: 'draft', currency: 'GBP', shopper: shoppers[2]!.id, lines: [{ item: items[3]!.id, quantity: 1, unit_price: '25.00', sort: 1 }] },
    ]),
    'purchases',
  );
  // the editor holds the "Shop desk" policy through a user-level access row
  ok(
    await editorApi.post('/items/parcels', [
      { purchase: purchases[0]!.id, carrier: 'royal_mail', tracking_code: 'RM123456789GB', dispatched_at: '2024-06-04T09:00:00Z', status: 'published' },
      { purchase: purchases[1]!.id, carrier: 'la_poste', tracking_code: 'LP00012345FR', status: 'draft' },
    ]),
    'parcels by the editor',
  );
  log('shop content created');

  await admin.post('/items/blog_posts_2019', [
    { title: 'We moved!', body: '<p>New office by the harbour.</p>', legacy_url: 'https://blog.lantern-press.example/2019/05/we-moved', status: 'archived' },
    { title: 'Autumn catalogue 2019', body: '<p>Six new titles.</p>', legacy_url: 'https://blog.lantern-press.example/2019/09/autumn', status: 'archived' },
  ]);
  await admin.post('/items/old_gift_cards', [
    { code: 'OLD-7F3A', balance: '10.00', issued_on: '2018-12-01' },
    { code: 'OLD-91C2', balance: '0.00', issued_on: '2019-02-14' },
  ]);
  ok(
    await admin.patch('/items/site_config', { site_title: 'Lantern Press', tagline: 'Books and a magazine about coasts', support_email: 'help@lantern-press.example', maintenance_mode: false, default_language: 'en-US', logo: files[0] }),
    'site_config',
  );
  await admin.patch(`/items/books/${b[0]}`, { status: 'published', page_count: 316 }); // an update: user_updated, a revision
  log('archive and singleton content created');
}

// ---- governance tables, derived sets, the proposal ------------------------------------------------

/**
 * The derived notions of axis-governance.md, in SQL: user collections (a
 * directus_collections row with a table, relkind r/p, in the schema of
 * directus_collections; name not directus_*), contained ones (many_collection
 * of a relation with junction_field or one_deselect_action = 'delete' whose
 * one_collection is another user collection), their container (one_field set
 * first, then the smallest relation id), anchors (the others).
 */
export const DERIVED_SQL = `
WITH uc AS (
  SELECT c.collection, c."group" AS folder
  FROM directus_collections c
  JOIN pg_class t ON t.relname = c.collection AND t.relkind IN ('r', 'p')
   AND t.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'directus_collections'::regclass)
  WHERE c.collection NOT LIKE 'directus\\_%'
), containers AS (
  SELECT DISTINCT ON (r.many_collection) r.many_collection AS collection, r.one_collection AS container
  FROM directus_relations r
  JOIN uc m ON m.collection = r.many_collection
  JOIN uc o ON o.collection = r.one_collection
  WHERE (r.junction_field IS NOT NULL OR r.one_deselect_action = 'delete') AND r.one_collection <> r.many_collection
  ORDER BY r.many_collection, (r.one_field IS NULL), r.id
)
SELECT uc.collection, uc.folder, k.container, (k.container IS NOT NULL) AS contained,
       (SELECT count(*)::int FROM directus_fields f WHERE f.collection = uc.collection) AS field_rows
FROM uc LEFT JOIN containers k USING (collection)
ORDER BY uc.collection`;

/** Violations of the consistency rules of the OS-AXIS payload against the metadata (empty = consistent). */
export const CONSISTENCY_SQL = `
WITH d AS (${DERIVED_SQL}),
p AS (SELECT payload FROM os_proposals WHERE key = 'OS-AXIS'),
axes AS (SELECT a->>'key' AS key FROM p, jsonb_array_elements(p.payload->'axes') a),
topics AS (SELECT t->>'axis' AS axis, t->>'key' AS key, t->>'directus_folder' AS folder FROM p, jsonb_array_elements(p.payload->'topics') t),
anchors AS (SELECT a->>'collection' AS collection, a->>'owner' AS owner, a->>'topic' AS topic FROM p, jsonb_array_elements(p.payload->'anchors') a),
rule AS (SELECT folder, key, axis FROM topics WHERE folder IS NOT NULL),
used_folders AS (SELECT DISTINCT folder FROM d WHERE folder IS NOT NULL)
SELECT 'anchor not named exactly once: ' || d.collection AS violation FROM d WHERE NOT d.contained AND (SELECT count(*) FROM anchors a WHERE a.collection = d.collection) <> 1
UNION ALL SELECT 'payload anchor is not an anchor: ' || a.collection FROM anchors a WHERE NOT EXISTS (SELECT 1 FROM d WHERE d.collection = a.collection AND NOT d.contained)
UNION ALL SELECT 'anchor without owner: ' || a.collection FROM anchors a WHERE a.owner IS NULL OR a.owner = ''
UNION ALL SELECT 'anchor topic not listed: ' || a.collection || ' -> ' || coalesce(a.topic, 'null') FROM anchors a WHERE NOT EXISTS (SELECT 1 FROM topics t WHERE t.key = a.topic)
UNION ALL SELECT 'anchor topic not on kg-domain-x: ' || a.collection FROM anchors a JOIN topics t ON t.key = a.topic WHERE t.axis <> 'kg-domain-x'
UNION ALL SELECT 'topic axis not listed: ' || t.key FROM topics t WHERE NOT EXISTS (SELECT 1 FROM axes x WHERE x.key = t.axis)
UNION ALL SELECT 'folder without a label rule: ' || u.folder FROM used_folders u WHERE (SELECT count(*) FROM rule r WHERE r.folder = u.folder) <> 1
UNION ALL SELECT 'folder rule on another axis than kg-domain-x / lifecycle: ' || r.folder FROM rule r WHERE r.axis NOT IN ('kg-domain-x', 'lifecycle')
UNION ALL SELECT 'anchor in folder ' || d.folder || ' has topic ' || a.topic || ', rule says ' || r.key
  FROM d JOIN anchors a ON a.collection = d.collection JOIN rule r ON r.folder = d.folder
  WHERE NOT d.contained AND r.axis = 'kg-domain-x' AND a.topic <> r.key
UNION ALL SELECT 'contained collection ' || d.collection || ' sits in folder ' || d.folder || ', its container ' || d.container || ' in ' || coalesce(c.folder, 'the root')
  FROM d JOIN d c ON c.collection = d.container
  WHERE d.contained AND d.folder IS NOT NULL AND d.folder IS DISTINCT FROM c.folder`;

const AXES = [
  { key: 'kg-domain-x', label: 'Knowledge-graph domain' },
  { key: 'lifecycle', label: 'Lifecycle' },
];
const TOPICS = [
  { axis: 'kg-domain-x', key: 'publishing', label: 'Publishing', directus_folder: 'publishing' },
  { axis: 'kg-domain-x', key: 'magazine', label: 'Magazine', directus_folder: 'magazine' },
  { axis: 'kg-domain-x', key: 'shop', label: 'Shop', directus_folder: 'shop' },
  { axis: 'kg-domain-x', key: 'fulfilment', label: 'Fulfilment', directus_folder: 'fulfilment' },
  { axis: 'kg-domain-x', key: 'community', label: 'Community', directus_folder: 'community' },
  { axis: 'lifecycle', key: 'archive', label: 'Archive', directus_folder: 'archive' },
];
const OWNER_OF_TOPIC: Record<string, string> = {
  publishing: 'team-publishing',
  magazine: 'team-magazine',
  shop: 'team-shop',
  fulfilment: 'team-fulfilment',
  community: 'team-community',
};
/** Anchors whose folder gives no kg-domain-x topic: at the root, or in the lifecycle facet `archive`. */
const TOPIC_OVERRIDES: Record<string, { topic: string; owner?: string }> = {
  languages: { topic: 'publishing' },
  site_config: { topic: 'community', owner: 'team-web' },
  blog_posts_2019: { topic: 'magazine' },
  old_gift_cards: { topic: 'shop' },
};

export interface Derived {
  collection: string;
  folder: string | null;
  container: string | null;
  contained: boolean;
  field_rows: number;
}

export async function derive(c: pg.Client): Promise<{ rows: Derived[]; anchors: Derived[]; contained: Derived[]; anchorFields: number; folders: string[]; collections: number }> {
  const rows = (await c.query<Derived>(DERIVED_SQL)).rows;
  const anchors = rows.filter((r) => !r.contained);
  const contained = rows.filter((r) => r.contained);
  const folders = (
    await c.query<{ collection: string }>(
      `SELECT collection FROM directus_collections c WHERE collection NOT LIKE 'directus\\_%'
         AND NOT EXISTS (SELECT 1 FROM pg_class t WHERE t.relname = c.collection AND t.relkind IN ('r','p','v','m','f')
                         AND t.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'directus_collections'::regclass))
       ORDER BY collection`,
    )
  ).rows.map((r) => r.collection);
  return { rows, anchors, contained, anchorFields: anchors.reduce((n, a) => n + a.field_rows, 0), folders, collections: rows.length };
}

async function governance(c: pg.Client, log: (s: string) => void): Promise<{ payload: unknown }> {
  await c.query(`
CREATE TABLE os_proposals (id serial PRIMARY KEY, key varchar(64) UNIQUE NOT NULL, title varchar(255), payload jsonb NOT NULL, payload_sha256 char(64) NOT NULL, user_created uuid REFERENCES directus_users(id), date_created timestamptz DEFAULT now());
CREATE TABLE os_proposal_approvals (id serial PRIMARY KEY, proposal integer NOT NULL REFERENCES os_proposals(id), approver uuid REFERENCES directus_users(id), payload_sha256 char(64) NOT NULL, date_created timestamptz DEFAULT now());`);
  const { anchors } = await derive(c);
  const ruleOf = new Map(TOPICS.filter((t) => t.axis === 'kg-domain-x').map((t) => [t.directus_folder, t.key]));
  const payloadAnchors = anchors.map((a) => {
    const topic = (a.folder ? ruleOf.get(a.folder) : undefined) ?? TOPIC_OVERRIDES[a.collection]?.topic;
    if (!topic) throw new Error(`anchor ${a.collection} (folder ${a.folder ?? 'root'}) has no topic: add it to TOPIC_OVERRIDES`);
    return { collection: a.collection, owner: TOPIC_OVERRIDES[a.collection]?.owner ?? OWNER_OF_TOPIC[topic]!, topic };
  });
  const payload = { axes: AXES, topics: TOPICS, anchors: payloadAnchors };
  await c.query(
    `INSERT INTO os_proposals (key, title, payload, payload_sha256, user_created)
     VALUES ('OS-AXIS', 'Axis governance: domains, owners and the archive facet', $1::jsonb,
             encode(sha256(convert_to($1::jsonb::text, 'UTF8')), 'hex'),
             (SELECT id FROM directus_users WHERE email = 'author@example.com'))`,
    [JSON.stringify(payload)],
  );
  const sha = (await c.query(`SELECT payload_sha256 = encode(sha256(convert_to(payload::text, 'UTF8')), 'hex') AS ok, payload_sha256 FROM os_proposals WHERE key = 'OS-AXIS'`)).rows[0];
  if (!sha?.ok) throw new Error('payload_sha256 does not match payload::text');
  const violations = (await c.query<{ violation: string }>(CONSISTENCY_SQL)).rows.map((r) => r.violation);
  if (violations.length) throw new Error(`OS-AXIS payload is inconsistent:\n  ${violations.join('\n  ')}`);
  log(`OS-AXIS inserted (${payloadAnchors.length} anchors, sha256 ${String(sha.payload_sha256)}), consistent`);
  return { payload };
}

// ---- main -------------------------------------------------------------------------------------------

export interface BuildResult {
  out: string;
  dump: string;
  version: string;
  timings: Record<string, number>;
  figures: { anchors: number; contained: number; anchorFields: number; folders: number; collections: number };
}

export async function buildFixture(options: { out?: string; serverUrl?: string; verbose?: boolean; log?: (s: string) => void } = {}): Promise<BuildResult> {
  const log = options.log ?? ((s: string) => process.stderr.write(`[build-fixture] ${s}\n`));
  const out = resolve(options.out ?? join(repo, 'test', 'fixtures', 'directus-real'));
  mkdirSync(out, { recursive: true });
  const dump = join(out, 'directus-11.sql');
  const t0 = Date.now();
  return await withDirectus({ serverUrl: options.serverUrl, admin: USERS.admin, verbose: options.verbose, log }, async (d) => {
    const tBooted = Date.now();
    log(`directus ${d.install.version} up at ${d.url} on ${d.databaseName} (install check ${d.timings.install} ms, bootstrap ${d.timings.bootstrap} ms, start ${d.timings.start} ms)`);
    const admin = d.api(await d.login(USERS.admin.email, USERS.admin.password));
    await buildModel(admin, log);
    const access = await buildAccess(admin);
    log(`users and policies created (${Object.keys(access).length} ids)`);
    await buildContent(d, admin, log);
    const tApi = Date.now();
    await d.halt();

    const c = await d.sql();
    let figures: BuildResult['figures'];
    try {
      await governance(c, log);
      // sessions (refresh tokens of this build's logins) are not part of a fixture
      await c.query('DELETE FROM directus_sessions');
      const got = await derive(c);
      figures = { anchors: got.anchors.length, contained: got.contained.length, anchorFields: got.anchorFields, folders: got.folders.length, collections: got.collections };
      log(`derived: ${figures.anchors} anchors (${got.anchors.map((a) => `${a.collection}${a.folder ? `@${a.folder}` : ''}`).join(', ')})`);
      log(`derived: ${figures.contained} contained (${got.contained.map((a) => `${a.collection}<${a.container}`).join(', ')})`);
      log(`derived: ${figures.anchorFields} anchor field rows; ${figures.folders} folders; ${figures.collections} user collections`);
      const users = (await c.query<{ email: string; status: string; role: string | null }>(`SELECT u.email, u.status, r.name AS role FROM directus_users u LEFT JOIN directus_roles r ON r.id = u.role ORDER BY u.email`)).rows;
      const migrations = Number((await c.query(`SELECT count(*) FROM directus_migrations`)).rows[0].count);
      writeFileSync(
        join(out, 'expected.json'),
        `${JSON.stringify(
          {
            directus: d.install.version,
            ...figures,
            anchorNames: got.anchors.map((a) => a.collection),
            containedNames: got.contained.map((a) => a.collection),
            folderNames: got.folders,
            users: Object.fromEntries(users.map((u) => [u.email, { status: u.status, role: u.role }])),
            emails: { admin: USERS.admin.email, approver: USERS.approver.email, editor: USERS.editor.email, suspended: USERS.suspended.email, author: USERS.author.email },
            proposal: { key: 'OS-AXIS', author: USERS.author.email, approvals: 0 },
            directusMigrations: migrations,
          },
          null,
          2,
        )}\n`,
      );
    } finally {
      await c.end();
    }

    // pg_dump, then prove it loads into an empty database named directus with psql -v ON_ERROR_STOP=1
    const bin = d.cluster ? d.cluster.bin : '';
    const tool = (name: string) => (bin ? join(bin, name) : name);
    execFileSync(tool('pg_dump'), ['--format=plain', '--no-owner', '--no-privileges', `--file=${dump}`, `--dbname=${d.database}`], { stdio: ['ignore', 'inherit', 'inherit'] });
    const tDump = Date.now();
    // on our own cluster the database is named directus, as the brief of the fixture says; on a given server, a name of our own
    const reloadName = d.cluster ? 'directus' : `${d.databaseName}_reload`;
    const loadUrl = new URL(d.database);
    loadUrl.pathname = `/${reloadName}`;
    const admin_ = new URL(d.database);
    admin_.pathname = '/postgres';
    execFileSync(tool('psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', `--dbname=${admin_.toString()}`, '-c', `CREATE DATABASE ${reloadName}`]);
    try {
      execFileSync(tool('psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', `--dbname=${loadUrl.toString()}`, '-f', dump], { stdio: ['ignore', 'ignore', 'inherit'] });
      const pgmod = (await import('pg')).default;
      const lc = new pgmod.Client({ connectionString: loadUrl.toString() });
      await lc.connect();
      try {
        const again = await derive(lc);
        const same = again.anchors.length === figures.anchors && again.contained.length === figures.contained && again.anchorFields === figures.anchorFields;
        if (!same) throw new Error('the reloaded dump derives other figures');
        const violations = (await lc.query(CONSISTENCY_SQL)).rows;
        if (violations.length) throw new Error('the reloaded dump is inconsistent');
      } finally {
        await lc.end();
      }
      log(`dump reloaded into an empty database '${reloadName}' with psql -v ON_ERROR_STOP=1: same figures, consistent`);
    } finally {
      execFileSync(tool('psql'), ['-X', '-q', `--dbname=${admin_.toString()}`, '-c', `DROP DATABASE IF EXISTS ${reloadName} WITH (FORCE)`]);
    }
    const timings = { bootAndInstallCheck: tBooted - t0, bootstrap: d.timings.bootstrap, start: d.timings.start, api: tApi - tBooted, sqlAndDump: tDump - tApi, total: Date.now() - t0 };
    log(`wrote ${dump} (${(statSync(dump).size / 1024).toFixed(0)} KiB, ${readFileSync(dump, 'utf8').split('\n').length} lines); timings ${JSON.stringify(timings)}`);
    return { out, dump, version: d.install.version, timings, figures };
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  buildFixture({ out: opt('--out'), serverUrl: opt('--server'), verbose: args.includes('--verbose') }).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    },
    (e: unknown) => {
      process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
