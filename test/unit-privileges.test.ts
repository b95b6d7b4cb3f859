/**
 * The privileges a tier file's own statements surely need, read with
 * PostgreSQL's parser: what apply checks before its first tier.
 */
import { describe, expect, it } from 'vitest';
import { privilegesNeeded, readsNeeded } from '../src/plan/privileges-needed.js';

describe('privilegesNeeded', () => {
  it('writes, triggers and foreign keys; not what a function, a rule or a DO block would run later, nor on tables the script creates (temporary ones included)', async () => {
    const sql = `
create table axis.t (id int primary key, owner uuid references directus_users (id));
insert into directus_fields (collection, field) values ('a', 'b') on conflict (id) do update set field = excluded.field;
with gone as (delete from "Public"."Odd Name" returning 1) update axis.drift_state set value = 1;
truncate axis.scan_run, axis.t;
create trigger t_ins after insert on os_proposal_approvals for each row execute function axis.f();
alter table axis.t add constraint t_fk foreign key (id) references axis.other (id);
create function axis.f() returns trigger language sql begin atomic insert into axis.audit values (1); end;
create rule r as on insert to axis.v do instead insert into axis.hidden values (1);
do $$ begin insert into axis.in_do values (1); end $$;
create temp table scratch (id int);
insert into scratch values (1);
insert into pg_temp.other values (1);
`;
    const needs = await privilegesNeeded(sql);
    expect(needs.map((n) => `${n.privilege} ${n.relation} :${n.line}`)).toEqual([
      'REFERENCES "directus_users" :2',
      'INSERT "directus_fields" :3',
      'UPDATE "directus_fields" :3',
      'UPDATE "axis"."drift_state" :4',
      'DELETE "Public"."Odd Name" :4',
      'TRUNCATE "axis"."scan_run" :5',
      'TRIGGER "os_proposal_approvals" :6',
      'REFERENCES "axis"."other" :7',
    ]);
  });

  it('a row lock asks UPDATE of the tables it locks: those it names (by alias too), else its whole FROM (joins too), in subqueries as well', async () => {
    const lock = `select (select count(*) from (select 1 from os_proposals p where p.key = 'X' for share) x)
      + (select count(*) from (select 1 from directus_users u join directus_access a on a.user = u.id for key share of a) y)
      + (select count(*) from (select 1 from axis.t, axis.u for update) z)`;
    const needs = await privilegesNeeded(lock);
    expect(needs.map((n) => `${n.privilege} ${n.relation} ${n.why}`)).toEqual([
      'UPDATE "os_proposals" a row lock (FOR SHARE)',
      'UPDATE "directus_access" a row lock (FOR KEY SHARE)',
      'UPDATE "axis"."t" a row lock (FOR UPDATE)',
      'UPDATE "axis"."u" a row lock (FOR UPDATE)',
    ]);
  });

  it('a file the parser refuses needs nothing it can name (lint refuses it)', async () => {
    expect(await privilegesNeeded('insert into oops values (')).toEqual([]);
  });
});

describe('readsNeeded', () => {
  it("SELECT on what a statement reads, and on a write's target only when the write reads it (PostgreSQL's rules)", async () => {
    const sql = `
with recent as (select id from axis.scan_run where id > 1) select * from recent join directus_users u on true, (select 1 from "Odd"."Name") x;
insert into axis.plain (a) values (1);
insert into axis.returned (a) select id from os_proposals returning id;
insert into axis.upserted (a) values (1) on conflict (a) do update set a = excluded.a;
insert into axis.kept (a) values (1) on conflict do nothing;
update axis.counted set n = n + 1;
update axis.constant set n = 1;
update axis.filtered set n = 1 where id = 2;
delete from axis.emptied;
delete from axis.joined using directus_roles r where r.id = 1;
truncate axis.truncated;
lock table axis.locked;
create view axis.v as select * from axis.viewed;
create function axis.f() returns int language sql as 'select count(*) from axis.in_body';
select 1 from os_proposal_approvals a for share of a;
select to_regclass('axis_audit.approval_origin') is not null, '"Odd"."T"'::regclass, to_regclass('unqualified');
`;
    const needs = await readsNeeded(sql);
    expect(needs.map((n) => `${n.privilege} ${n.schema ?? '-'}.${n.name} :${n.line}`)).toEqual([
      'SELECT -.directus_users :2',
      'SELECT Odd.Name :2',
      'SELECT axis.scan_run :2',
      'SELECT axis.returned :4',
      'SELECT -.os_proposals :4',
      'SELECT axis.upserted :5',
      'SELECT axis.counted :7',
      'SELECT axis.filtered :9',
      'SELECT axis.joined :11',
      'SELECT -.directus_roles :11',
      'SELECT -.os_proposal_approvals :16',
      'USAGE axis_audit. :17',
      'USAGE Odd. :17',
    ]);
  });

  it('a file the parser refuses reads nothing it can name', async () => {
    expect(await readsNeeded('select from (')).toEqual([]);
  });
});

