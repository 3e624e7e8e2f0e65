import { useState } from 'preact/hooks';

/** Light, dark, or the system's choice; only this preference is kept across visits. */
type Theme = 'system' | 'light' | 'dark';
const STORAGE = 'taskyard.theme';
const ORDER: Theme[] = ['system', 'light', 'dark'];

export function applyTheme(theme: Theme = storedTheme()): void {
  if (theme === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
}

function storedTheme(): Theme {
  const value = localStorage.getItem(STORAGE);
  return value === 'light' || value === 'dark' ? value : 'system';
}

export function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(storedTheme);
  const next = ORDER[(ORDER.indexOf(theme) + 1) % ORDER.length]!;
  const choose = () => {
    setTheme(next);
    if (next === 'system') localStorage.removeItem(STORAGE);
    else localStorage.setItem(STORAGE, next);
    applyTheme(next);
  };
  return (
    <button type="button" onClick={choose} aria-label={`Theme: ${theme}. Switch to ${next}`} title={`Theme: ${theme}`}>
      {theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◐'} <span class="theme-label">{theme}</span>
    </button>
  );
}
