using PgOtelGateway.Shared.RemoteWrite.Proto;

namespace PgOtelGateway.Shared.Translation;

/// <summary>
/// Labels of one series while they are being assembled: original keys are sanitized, and keys that sanitize to
/// the same label name have their values joined with <c>;</c> in the order of their original keys.
/// </summary>
internal sealed class LabelSet
{
    private readonly List<(string Name, string Key, string Value)> _labels = new(8);

    /// <summary>The labels so far: final name, original key, value (in the order they were added).</summary>
    public ReadOnlySpan<(string Name, string Key, string Value)> Entries => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_labels);

    /// <summary>Empties the set for the next series (the set is reused across points).</summary>
    public void Clear() => _labels.Clear();

    /// <summary>Adds an attribute; a second attribute with the same sanitized name joins the first.</summary>
    public void Add(string key, string value)
    {
        var name = PrometheusNaming.LabelName(key);
        for (var i = 0; i < _labels.Count; i++)
        {
            if (_labels[i].Name == name)
            {
                if (_labels[i].Key == key)
                {
                    _labels[i] = (name, key, value);
                }
                else
                {
                    var first = string.CompareOrdinal(_labels[i].Key, key) <= 0;
                    var joined = first ? _labels[i].Value + ";" + value : value + ";" + _labels[i].Value;
                    _labels[i] = (name, first ? _labels[i].Key : key, joined);
                }

                return;
            }
        }

        _labels.Add((name, key, value));
    }

    /// <summary>Sets an attribute, replacing any earlier value for the exact same key.</summary>
    public void Set(string key, string value)
    {
        var name = PrometheusNaming.LabelName(key);
        for (var i = 0; i < _labels.Count; i++)
        {
            if (_labels[i].Name == name && _labels[i].Key == key)
            {
                _labels[i] = (name, key, value);
                return;
            }
        }

        Add(key, value);
    }

    /// <summary>Sets a label by its final name, replacing whatever sanitized to it.</summary>
    public void SetSanitized(string name, string value)
    {
        for (var i = _labels.Count - 1; i >= 0; i--)
        {
            if (_labels[i].Name == name)
            {
                _labels.RemoveAt(i);
            }
        }

        _labels.Add((name, name, value));
    }

    /// <summary>A copy with one more label (bucket <c>le</c>, summary <c>quantile</c>).</summary>
    public LabelSet With(string name, string value)
    {
        var copy = new LabelSet();
        copy._labels.AddRange(_labels);
        copy.SetSanitized(name, value);
        return copy;
    }

    /// <summary>Builds the remote-write series: <c>__name__</c>, these labels, the external labels not already set; sorted.</summary>
    public TimeSeries ToSeries(string metricName, double value, long timestampMs, IReadOnlyDictionary<string, string> externalLabels) =>
        ToSeries(metricName, null, null, value, timestampMs, externalLabels);

    /// <summary>
    /// As <see cref="ToSeries(string, double, long, IReadOnlyDictionary{string, string})"/> on <c>With(extraName, extraValue)</c>
    /// when <paramref name="extraName"/> is given (bucket <c>le</c>, summary <c>quantile</c>), without copying the set.
    /// </summary>
    public TimeSeries ToSeries(string metricName, string? extraName, string? extraValue, double value, long timestampMs, IReadOnlyDictionary<string, string> externalLabels)
    {
        var series = new TimeSeries();
        var labels = new List<Label>(_labels.Count + 2 + externalLabels.Count) { new() { Name = "__name__", Value = metricName } };
        foreach (var (name, _, v) in _labels)
        {
            // Prometheus treats an empty label value as an absent label; the extra label replaces its namesakes.
            if (v.Length > 0 && (extraName is null || name != extraName))
            {
                labels.Add(new Label { Name = name, Value = v });
            }
        }

        if (extraName is not null && extraValue!.Length > 0)
        {
            labels.Add(new Label { Name = extraName, Value = extraValue });
        }

        foreach (var (name, v) in externalLabels)
        {
            if (!labels.Exists(l => l.Name == name))
            {
                labels.Add(new Label { Name = name, Value = v });
            }
        }

        labels.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        series.Labels.AddRange(labels);
        series.Samples.Add(new Sample { Value = value, Timestamp = timestampMs });
        return series;
    }
}

/// <summary>Receives the series of a translation one at a time (see <see cref="OtlpToPrometheus"/>).</summary>
internal interface ISeriesSink
{
    /// <summary>
    /// One series: <c>__name__</c> = <paramref name="metricName"/>, the labels of <paramref name="labels"/> with a
    /// non-empty value, and, when <paramref name="extraName"/> is given, that label in place of any namesake; the
    /// sink adds the external labels. <paramref name="labels"/> is reused after this returns.
    /// </summary>
    void Add(string metricName, LabelSet labels, string? extraName, string? extraValue, double value, long timestampMs);
}

/// <summary>Collects series as <see cref="TimeSeries"/> objects (tests, tools, the object-based API).</summary>
internal sealed class SeriesListSink(List<TimeSeries> series, IReadOnlyDictionary<string, string> externalLabels) : ISeriesSink
{
    public void Add(string metricName, LabelSet labels, string? extraName, string? extraValue, double value, long timestampMs) =>
        series.Add(labels.ToSeries(metricName, extraName, extraValue, value, timestampMs, externalLabels));
}
