import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, ApiError, type Task } from '../api';
import { ParamsForm } from '../components/ParamsForm';
import { useApp } from '../context';
import { href, navigate } from '../route';
import { formFields, initialValues, placeServerErrors, readForm, withoutError, type FormValues } from '../schemaForm';

/** Options of the launch body that are not params; their 422s are shown on their own inputs. */
const OPTION_FIELDS = ['countdown', 'priority', 'idempotency_key'] as const;
type Options = Record<(typeof OPTION_FIELDS)[number], string>;
const NO_OPTIONS: Options = { countdown: '', priority: '', idempotency_key: '' };

/** A launch form generated from the chosen task's parameter schema. */
export function LaunchView({ query }: { query: URLSearchParams }) {
  const { types, canAct, toast } = useApp();
  const all = useMemo(() => types?.categories.flatMap((c) => c.tasks) ?? [], [types]);
  const name = query.get('task') ?? '';
  const definition = all.find((t) => t.name === name) ?? null;
  const fields = useMemo(() => (definition ? formFields(definition.params_schema) : []), [definition]);
  const [values, setValues] = useState<FormValues>({});
  const [options, setOptions] = useState<Options>(NO_OPTIONS);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setValues(initialValues(fields));
    setOptions(NO_OPTIONS);
    setErrors({});
    setGeneral([]);
  }, [fields]);

  const editOption = (next: Options, field: string) => {
    setOptions(next);
    setErrors((e) => withoutError(e, field));
  };

  if (!canAct) return <p role="alert">Your key may read but not launch tasks.</p>;
  if (!types) return <p class="muted">Loading task types…</p>;

  const submit = async (event: Event) => {
    event.preventDefault();
    if (!definition) return;
    const { params, errors: found } = readForm(fields, values);
    const optionErrors = checkOptions(options);
    setErrors({ ...found, ...optionErrors });
    setGeneral([]);
    if (Object.keys(found).length || Object.keys(optionErrors).length) {
      focusFirstError();
      return;
    }
    setBusy(true);
    try {
      const body: Record<string, unknown> = { task_type: definition.name, params };
      if (options.countdown.trim()) body.countdown = Number(options.countdown);
      if (options.priority.trim()) body.priority = Number(options.priority);
      if (options.idempotency_key.trim()) body.idempotency_key = options.idempotency_key.trim();
      const task = await api<Task>('/api/tasks', { body });
      toast(`Launched ${task.display_name}.`);
      navigate(href(['tasks', task.task_id]));
    } catch (error) {
      if (error instanceof ApiError && error.status === 422) {
        const placed = placeServerErrors(fields, error.errors.filter((e) => !isOption(e.field)));
        const byOption = Object.fromEntries(error.errors.filter((e) => isOption(e.field)).map((e) => [e.field, e.message]));
        setErrors({ ...placed.byField, ...byOption });
        setGeneral(placed.general.length ? placed.general : Object.keys(placed.byField).length || Object.keys(byOption).length ? [] : [error.detail]);
        focusFirstError();
      } else {
        setGeneral([error instanceof ApiError ? error.detail : 'The server cannot be reached.']);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="launch-title" class="launch">
      <h1 id="launch-title">Launch a task</h1>
      <form onSubmit={submit} noValidate>
        <div class="field">
          <label for="launch-task">Task</label>
          <select
            id="launch-task"
            value={name}
            onChange={(e) => navigate(href(['launch'], { task: e.currentTarget.value }), { replace: true })}
          >
            <option value="">Choose a task…</option>
            {types.categories.map((c) => (
              <optgroup key={c.category} label={c.category}>
                {c.tasks.map((t) => (
                  <option key={t.name} value={t.name}>{t.display_name} ({t.name})</option>
                ))}
              </optgroup>
            ))}
          </select>
        </div>
        {definition ? (
          <>
            {definition.description ? <p class="muted">{definition.description}</p> : null}
            <fieldset>
              <legend>Parameters</legend>
              <ParamsForm
                fields={fields}
                values={values}
                errors={errors}
                onChange={(next, field) => {
                  setValues(next);
                  setErrors((e) => withoutError(e, field));
                }}
              />
            </fieldset>
            <details>
              <summary>Options</summary>
              <div class="fields">
                <OptionInput id="countdown" label="Delay (seconds)" type="number" options={options} errors={errors} onChange={editOption} />
                <OptionInput id="priority" label="Priority (higher first)" type="number" options={options} errors={errors} onChange={editOption} />
                <OptionInput id="idempotency_key" label="Idempotency key" type="text" options={options} errors={errors} onChange={editOption} />
              </div>
            </details>
            {general.length ? (
              <div class="error-text" role="alert">
                {general.map((g) => <p key={g}>{g}</p>)}
              </div>
            ) : null}
            <button type="submit" class="primary" disabled={busy}>{busy ? 'Launching…' : 'Launch'}</button>
          </>
        ) : null}
      </form>
    </section>
  );
}

const isOption = (field: string) => (OPTION_FIELDS as readonly string[]).includes(field);

function checkOptions(options: Options): Record<string, string> {
  const errors: Record<string, string> = {};
  const countdown = options.countdown.trim();
  if (countdown && !(Number(countdown) >= 0)) errors.countdown = 'must be a number of seconds, 0 or more';
  const priority = options.priority.trim();
  if (priority && !Number.isInteger(Number(priority))) errors.priority = 'must be a whole number';
  return errors;
}

function focusFirstError() {
  requestAnimationFrame(() => document.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus());
}

function OptionInput(props: {
  id: keyof Options;
  label: string;
  type: 'number' | 'text';
  options: Options;
  errors: Record<string, string>;
  onChange(options: Options, field: string): void;
}) {
  const { id, label, type, options, errors, onChange } = props;
  const error = errors[id];
  const inputProps = {
    id: `option-${id}`,
    value: options[id],
    'aria-invalid': error ? true : undefined,
    'aria-describedby': error ? `option-${id}-error` : undefined,
    onInput: (e: Event) => onChange({ ...options, [id]: (e.currentTarget as HTMLInputElement).value }, id),
  };
  return (
    <div class={`field${error ? ' field-error' : ''}`} data-field={id}>
      <label for={`option-${id}`}>{label}</label>
      {type === 'number' ? <input type="number" {...inputProps} /> : <input type="text" autocomplete="off" {...inputProps} />}
      {error ? <small id={`option-${id}-error`} class="error-text">{error}</small> : null}
    </div>
  );
}
