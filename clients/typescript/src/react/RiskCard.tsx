import type { DroughtAnalysis } from '../types.js';

const URGENCY: Record<string, string> = {
  immediate: 'Immediately',
  this_week: 'This week',
  this_month: 'This month',
  seasonal: 'This season',
};

/** The analysis as a card: risk level, confidence, key factors and recommendations. */
export function RiskCard({ analysis, region }: { analysis: DroughtAnalysis; region?: string }) {
  const confidence = Math.round(analysis.confidence * 100);
  return (
    <section
      className={`sidecar-risk-card sidecar-risk-${analysis.risk_level}`}
      data-testid="risk-card"
      data-risk-level={analysis.risk_level}
      aria-label="Drought risk"
    >
      <header>
        <h3>
          {region ? `${region}: ` : ''}
          <span className="sidecar-risk-level">{analysis.risk_level}</span> drought risk
        </h3>
        <p className="sidecar-confidence">Confidence {confidence}%</p>
      </header>
      <p className="sidecar-summary">{analysis.summary}</p>
      <h4>Key factors</h4>
      <ul className="sidecar-factors">
        {analysis.key_factors.map((factor, index) => (
          <li key={index}>{factor}</li>
        ))}
      </ul>
      <h4>Recommendations</h4>
      <ul className="sidecar-recommendations">
        {analysis.recommendations.map((item, index) => (
          <li key={index}>
            <strong>{URGENCY[item.urgency] ?? item.urgency}</strong> ({item.audience}): {item.action}
          </li>
        ))}
      </ul>
    </section>
  );
}
