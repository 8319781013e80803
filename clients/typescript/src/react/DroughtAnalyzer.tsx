import { useState, type FormEvent } from 'react';
import { ValidationError } from '../errors.js';
import type { Audience, DroughtAnalysis, DroughtIndicators } from '../types.js';
import type { ClientSource } from './context.js';
import { useDroughtAnalysis } from './hooks.js';
import { RiskCard } from './RiskCard.js';

/** The known indicators, their labels and input bounds. */
export const INDICATORS = [
  { name: 'rainfall_mm_30d', label: 'Rainfall, last 30 days (mm)', min: 0, max: 3000, step: 0.1 },
  { name: 'rainfall_anomaly_pct', label: 'Rainfall anomaly (% of normal)', min: -100, max: 1000, step: 1 },
  { name: 'soil_moisture_pct', label: 'Soil moisture (% field capacity)', min: 0, max: 100, step: 1 },
  { name: 'spi_3m', label: 'SPI, 3 months', min: -5, max: 5, step: 0.1 },
  { name: 'ndvi', label: 'NDVI', min: -1, max: 1, step: 0.01 },
  { name: 'reservoir_pct', label: 'Reservoir level (% full)', min: 0, max: 150, step: 1 },
  { name: 'temperature_anomaly_c', label: 'Temperature anomaly (°C)', min: -20, max: 20, step: 0.1 },
  { name: 'forecast_rain_mm_14d', label: 'Forecast rain, next 14 days (mm)', min: 0, max: 2000, step: 0.1 },
] as const;

export type DroughtAnalyzerProps = {
  client?: ClientSource;
  initialRegion?: string;
  initialIndicators?: DroughtIndicators;
  initialAudience?: Audience;
  model?: string;
  onResult?: (analysis: DroughtAnalysis) => void;
};

function toFields(indicators: DroughtIndicators = {}): Record<string, string> {
  return Object.fromEntries(INDICATORS.map(({ name }) => [name, indicators[name]?.toString() ?? '']));
}

/** A region and indicators form; the summary streams in, then the risk card shows. */
export function DroughtAnalyzer(props: DroughtAnalyzerProps) {
  const { client, initialRegion = '', initialIndicators, initialAudience = 'farmer', model, onResult } = props;
  const drought = useDroughtAnalysis({ client });
  const [region, setRegion] = useState(initialRegion);
  const [audience, setAudience] = useState<Audience>(initialAudience);
  const [fields, setFields] = useState(() => toFields(initialIndicators));
  const [analysedRegion, setAnalysedRegion] = useState('');

  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const indicators: DroughtIndicators = {};
    for (const [name, value] of Object.entries(fields)) if (value.trim() !== '') indicators[name] = Number(value);
    setAnalysedRegion(region);
    const result = await drought.run({ region, indicators, audience }, model ? { model } : {});
    if (result) onResult?.(result.analysis);
  };

  const field = drought.error instanceof ValidationError ? drought.error.field : undefined;
  return (
    <div className="sidecar-drought-analyzer">
      <form onSubmit={(event) => void submit(event)} aria-label="Drought analysis">
        <label>
          Region
          <input name="region" value={region} required onChange={(e) => setRegion(e.target.value)} />
        </label>
        <label>
          Audience
          <select name="audience" value={audience} onChange={(e) => setAudience(e.target.value as Audience)}>
            <option value="farmer">Farmer</option>
            <option value="council">Council</option>
            <option value="analyst">Analyst</option>
          </select>
        </label>
        <fieldset>
          <legend>Indicators</legend>
          {INDICATORS.map(({ name, label, min, max, step }) => (
            <label key={name}>
              {label}
              <input
                name={name}
                type="number"
                min={min}
                max={max}
                step={step}
                value={fields[name] ?? ''}
                aria-invalid={field?.endsWith(name) || undefined}
                onChange={(e) => setFields((f) => ({ ...f, [name]: e.target.value }))}
              />
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={drought.isRunning}>
          {drought.isRunning ? 'Analysing…' : 'Analyse'}
        </button>
        {drought.isRunning && (
          <button type="button" onClick={() => drought.stop()}>
            Stop
          </button>
        )}
      </form>
      {drought.error && (
        <p role="alert" className="sidecar-error">
          {drought.error.message}
        </p>
      )}
      {(drought.isRunning || drought.summary) && !drought.analysis && (
        <p className="sidecar-streaming" data-testid="streamed-summary" aria-live="polite">
          {drought.summary || 'Waiting for the first words…'}
        </p>
      )}
      {drought.analysis && <RiskCard analysis={drought.analysis} region={analysedRegion} />}
    </div>
  );
}
