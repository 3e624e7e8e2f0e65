/**
 * The dashboard's logic without a browser: the event-stream parser, the generated launch form,
 * URL filters, and how events update a row. (Type-checked with the dashboard's own tsconfig.)
 */
import { describe, expect, it } from 'vitest';
import type { Task } from '../src/dashboard/src/api';
import type { TaskEvent } from '../src/dashboard/src/events';
import { SseParser } from '../src/dashboard/src/events';
import { filtersFromQuery, filtersToApi, filtersToQuery, mayMatch } from '../src/dashboard/src/filters';
import { applyEvent } from '../src/dashboard/src/live';
import { formFields, initialValues, placeServerErrors, readForm } from '../src/dashboard/src/schemaForm';

describe('SseParser', () => {
  it('parses frames split anywhere, with ids, event names, multi-line data and comments', () => {
    const parser = new SseParser();
    const text = 'retry: 3000\n: connected\n\nid: 7\nevent: progress\ndata: {"a":\ndata: 1}\n\n: ping\n\nid: 8\r\nevent: succeeded\r\ndata: {}\r\n\r\n';
    const frames = [];
    for (let i = 0; i < text.length; i += 3) frames.push(...parser.push(text.slice(i, i + 3)));
    expect(frames).toEqual([
      { id: '7', event: 'progress', data: '{"a":\n1}' },
      { id: '8', event: 'succeeded', data: '{}' },
    ]);
    expect(parser.retryMs).toBe(3000);
  });

  it('keeps the last id for frames without one, as Last-Event-ID does', () => {
    const parser = new SseParser();
    expect(parser.push('id: 5\nevent: resync\ndata: {"from":5}\n\nevent: x\ndata: y\n\n')).toEqual([
      { id: '5', event: 'resync', data: '{"from":5}' },
      { id: '5', event: 'x', data: 'y' },
    ]);
  });
});

describe('launch form from JSON Schema', () => {
  const schema = {
    type: 'object',
    properties: {
      company_id: { type: ['string', 'number'], description: 'Company id' },
      months: { default: 1, type: 'integer', minimum: 1, maximum: 12 },
      offset: { default: 0, type: 'integer', minimum: 0, maximum: 9007199254740991 },
      year: { type: 'string', pattern: '^\\d{4}$' },
      dry_run: { type: 'boolean' },
      mode: { enum: ['fast', 'full'] },
      chunks: { default: [], type: 'array', items: { type: 'string' } },
      config: { default: {}, type: 'object' },
    },
    required: ['company_id', 'months'],
  };
  const fields = formFields(schema);

  it('derives one field per parameter, with its kind and whether it is required', () => {
    expect(fields.map((f) => [f.name, f.kind, f.required])).toEqual([
      ['company_id', 'text', true],
      ['months', 'integer', false], // has a default
      ['offset', 'integer', false],
      ['year', 'text', false],
      ['dry_run', 'boolean', false],
      ['mode', 'enum', false],
      ['chunks', 'list', false],
      ['config', 'json', false],
    ]);
    expect(initialValues(fields)).toMatchObject({ months: '1', offset: '0', chunks: '', config: '{}', dry_run: false });
  });

  it('checks values before sending and builds typed params', () => {
    const bad = readForm(fields, { ...initialValues(fields), months: '13', year: '24', config: '{', mode: 'slow' });
    expect(bad.errors).toEqual({
      company_id: 'is required',
      months: 'must be at most 12',
      year: 'must match ^\\d{4}$',
      config: 'must be valid JSON',
      mode: 'must be one of fast, full',
    });
    const good = readForm(fields, { ...initialValues(fields), company_id: ' 73 ', months: '3', offset: '', chunks: 'a\n\n b ', config: '{"x":1}', dry_run: true });
    expect(good.errors).toEqual({});
    expect(good.params).toEqual({ company_id: '73', months: 3, chunks: ['a', 'b'], config: { x: 1 }, dry_run: true });
  });

  it('prefills a re-launch from the run’s params', () => {
    expect(initialValues(fields, { company_id: 73, months: 6, chunks: ['x', 'y'], config: { a: 1 } })).toMatchObject({
      company_id: '73',
      months: '6',
      chunks: 'x\ny',
      config: '{\n  "a": 1\n}',
    });
  });

  it('puts server 422 errors on their fields, the rest on the form', () => {
    expect(
      placeServerErrors(fields, [
        { field: 'months', message: 'Too big' },
        { field: 'params.year', message: 'bad' },
        { field: 'config.tolerance', message: 'must be positive' },
        { field: 'countdown', message: 'Too small' },
      ]),
    ).toEqual({ byField: { months: 'Too big', year: 'bad', config: 'must be positive' }, general: ['countdown: Too small'] });
  });
});

describe('filters in the URL', () => {
  it('round-trip through the query string and map to the API', () => {
    const query = new URLSearchParams('state=failure,STARTED,bogus&name=sii.sync_documents&tenant=73&q=50%25&range=1h&limit=100&cursor=abc');
    const filters = filtersFromQuery(query);
    expect(filters).toMatchObject({ states: ['FAILURE', 'STARTED'], name: 'sii.sync_documents', tenant: '73', q: '50%', range: '1h', limit: 100 });
    expect(filtersFromQuery(filtersToQuery(filters))).toEqual(filters);
    const api = filtersToApi(filters, Date.parse('2030-01-01T01:00:00Z'));
    expect(api).toMatchObject({ state: 'FAILURE,STARTED', tenant_id: '73', q: '50%', since: '2030-01-01T00:00:00.000Z', limit: '100', cursor: 'abc' });
    expect(filtersFromQuery(new URLSearchParams('limit=7&range=forever&since=nonsense'))).toMatchObject({ limit: 50, range: '', since: '' });
  });

  it('tells whether a new run may belong in the list', () => {
    const filters = filtersFromQuery(new URLSearchParams('state=PENDING&tenant=73'));
    const event = { name: 'a', task_type: 'x', tenant_id: '73', state: 'PENDING' as const };
    expect(mayMatch(filters, event)).toBe(true);
    expect(mayMatch(filters, { ...event, tenant_id: '4' })).toBe(false);
    expect(mayMatch(filters, { ...event, state: 'STARTED' })).toBe(false);
    const ended = filtersFromQuery(new URLSearchParams('until=2020-01-01T00:00:00Z'));
    expect(mayMatch(ended, event)).toBe(false);
  });
});

describe('events update a row', () => {
  const task = {
    task_id: 't1',
    state: 'PENDING',
    progress: 0,
    progress_message: null,
    attempt: 0,
    started_at: null,
    finished_at: null,
    error: null,
    updated_at: '2030-01-01T00:00:01.000Z',
  } as unknown as Task;
  const event = (type: string, at: string, state: TaskEvent['state'], data: Record<string, unknown> | null = null): TaskEvent => ({
    seq: 1,
    task_id: 't1',
    type,
    state,
    name: 'n',
    task_type: 'c',
    tenant_id: null,
    at,
    data,
  });

  it('applies transitions and progress in order', () => {
    let t = applyEvent(task, event('started', '2030-01-01T00:00:02.000Z', 'STARTED', { attempt: 1 }));
    t = applyEvent(t, event('progress', '2030-01-01T00:00:03.000Z', 'STARTED', { progress: 40, message: 'half' }));
    expect(t).toMatchObject({ state: 'STARTED', attempt: 1, progress: 40, progress_message: 'half', started_at: '2030-01-01T00:00:02.000Z' });
    t = applyEvent(t, event('failed', '2030-01-01T00:00:04.000Z', 'FAILURE', { error: 'boom' }));
    expect(t).toMatchObject({ state: 'FAILURE', error: 'boom', finished_at: '2030-01-01T00:00:04.000Z' });
  });

  it('ignores an event older than the record (the record was read after it)', () => {
    expect(applyEvent(task, event('started', '2030-01-01T00:00:00.500Z', 'STARTED'))).toBe(task);
  });
});
