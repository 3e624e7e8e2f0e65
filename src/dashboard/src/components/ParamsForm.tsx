import { useId } from 'preact/hooks';
import type { FormField, FormValues } from '../schemaForm';

interface Props {
  fields: FormField[];
  values: FormValues;
  errors: Record<string, string>;
  /** New values, and the field that changed (its error no longer applies). */
  onChange(values: FormValues, field: string): void;
}

/** The inputs of a generated launch form: one labelled control per parameter, errors beside it. */
export function ParamsForm({ fields, values, errors, onChange }: Props) {
  const prefix = useId();
  if (fields.length === 0) return <p class="muted">This task takes no parameters.</p>;
  const set = (name: string, value: string | boolean) => onChange({ ...values, [name]: value }, name);

  return (
    <div class="fields">
      {fields.map((field) => {
        const id = `${prefix}-${field.name}`;
        const error = errors[field.name];
        const describedBy = [field.description ? `${id}-help` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
        const common = {
          id,
          name: field.name,
          'aria-invalid': error ? true : undefined,
          'aria-describedby': describedBy,
          'aria-required': field.required || undefined,
        };
        const value = values[field.name];
        const text = typeof value === 'string' ? value : '';
        let control;
        switch (field.kind) {
          case 'boolean':
            control = <input {...common} type="checkbox" checked={value === true} onChange={(e) => set(field.name, e.currentTarget.checked)} />;
            break;
          case 'enum':
            control = (
              <select {...common} value={text} onChange={(e) => set(field.name, e.currentTarget.value)}>
                {field.required ? null : <option value="">(default)</option>}
                {field.schema.enum!.map((option) => (
                  <option key={String(option)} value={String(option)}>{String(option)}</option>
                ))}
              </select>
            );
            break;
          case 'integer':
          case 'number':
            control = (
              <input
                {...common}
                type="number"
                inputMode={field.kind === 'integer' ? 'numeric' : 'decimal'}
                step={field.kind === 'integer' ? 1 : 'any'}
                value={text}
                onInput={(e) => set(field.name, e.currentTarget.value)}
              />
            );
            break;
          case 'list':
          case 'json':
            control = (
              <textarea
                {...common}
                rows={field.kind === 'json' ? 4 : 3}
                spellcheck={false}
                class="mono"
                value={text}
                placeholder={field.kind === 'list' ? 'One item per line' : 'JSON'}
                onInput={(e) => set(field.name, e.currentTarget.value)}
              />
            );
            break;
          default:
            control = <input {...common} type="text" autocomplete="off" value={text} onInput={(e) => set(field.name, e.currentTarget.value)} />;
        }
        return (
          <div class={`field${field.kind === 'boolean' ? ' field-inline' : ''}${error ? ' field-error' : ''}`} key={field.name} data-field={field.name}>
            <label for={id}>
              <span class="mono">{field.name}</span>
              {field.required ? <span class="required" aria-hidden="true"> *</span> : null}
            </label>
            {control}
            {field.description ? <small id={`${id}-help`} class="help">{field.description}</small> : null}
            {error ? <small id={`${id}-error`} class="error-text">{error}</small> : null}
          </div>
        );
      })}
    </div>
  );
}
