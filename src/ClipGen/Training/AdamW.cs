using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Training;

/// <summary>A named trainable tensor and whether weight decay applies to it.</summary>
public sealed record TrainableParameter(string Name, TorchSharp.Modules.Parameter Tensor, bool Decay);

/// <summary>
/// AdamW (decoupled weight decay, Loshchilov &amp; Hutter) written over TorchSharp tensors, with its state kept by
/// parameter name so it can be saved and restored exactly. Weight decay applies only to the parameters marked so
/// (see <see cref="ParameterGroups"/>).
/// </summary>
public sealed class AdamW : IDisposable
{
    readonly List<TrainableParameter> _params;
    readonly Dictionary<string, (Tensor M, Tensor V)> _state = new();

    public AdamW(IEnumerable<TrainableParameter> parameters, double beta1 = 0.9, double beta2 = 0.98, double eps = 1e-6, double weightDecay = 0.2)
    {
        _params = parameters.ToList();
        Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay;
        foreach (var p in _params)
            _state[p.Name] = (zeros_like(p.Tensor).DetachFromDisposeScope(), zeros_like(p.Tensor).DetachFromDisposeScope());
    }

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public double WeightDecay { get; }

    /// <summary>Number of steps taken (Adam's bias-correction counter).</summary>
    public long StepCount { get; private set; }

    public IReadOnlyList<TrainableParameter> Parameters => _params;

    /// <summary>One update with learning rate <paramref name="lr"/>. Parameters without a gradient are skipped.</summary>
    public void Step(double lr)
    {
        StepCount++;
        double bc1 = 1 - Math.Pow(Beta1, StepCount), bc2 = 1 - Math.Pow(Beta2, StepCount);
        using var _ = no_grad();
        foreach (var p in _params)
        {
            using var grad = p.Tensor.grad;
            if (grad is null) continue;
            var (m, v) = _state[p.Name];
            if (p.Decay && WeightDecay > 0) p.Tensor.mul_(1 - lr * WeightDecay);
            m.mul_(Beta1).add_(grad, alpha: 1 - Beta1);
            v.mul_(Beta2).addcmul_(grad, grad, value: 1 - Beta2);
            using var denom = (v / bc2).sqrt_().add_(Eps);
            p.Tensor.addcdiv_(m, denom, value: -lr / bc1);
        }
    }

    public void ZeroGrad()
    {
        foreach (var p in _params) p.Tensor.grad?.zero_();
    }

    /// <summary>The optimiser state as named tensors (<c>exp_avg.NAME</c>, <c>exp_avg_sq.NAME</c>).</summary>
    public Dictionary<string, Tensor> StateTensors()
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (name, (m, v)) in _state)
        {
            d["optimizer.exp_avg." + name] = m;
            d["optimizer.exp_avg_sq." + name] = v;
        }
        return d;
    }

    /// <summary>Restores the state saved by <see cref="StateTensors"/> and the step counter.</summary>
    public void LoadState(IReadOnlyDictionary<string, Tensor> tensors, long stepCount)
    {
        using var _ = no_grad();
        foreach (var (name, (m, v)) in _state)
        {
            if (!tensors.TryGetValue("optimizer.exp_avg." + name, out var sm) || !tensors.TryGetValue("optimizer.exp_avg_sq." + name, out var sv))
                throw new ClipGenException($"the training checkpoint has no optimizer state for '{name}'");
            m.copy_(sm);
            v.copy_(sv);
        }
        StepCount = stepCount;
    }

    public void Dispose()
    {
        foreach (var (m, v) in _state.Values) { m.Dispose(); v.Dispose(); }
        _state.Clear();
    }
}

/// <summary>Which parameters are trained, and which of them get weight decay.</summary>
public static class ParameterGroups
{
    /// <summary>
    /// Weight decay goes to ≥2-D weights only: not to gains and biases (1-D), not to embeddings (token, positional,
    /// class embeddings) and not to <c>logit_scale</c>/<c>logit_bias</c>. With <paramref name="freezeImageTower"/>
    /// (LiT) every <c>visual.</c> parameter is frozen and left out.
    /// </summary>
    public static List<TrainableParameter> Split(nn.Module module, bool freezeImageTower = false)
    {
        var list = new List<TrainableParameter>();
        foreach (var (name, p) in module.named_parameters())
        {
            if (freezeImageTower && name.StartsWith("visual.", StringComparison.Ordinal))
            {
                p.requires_grad = false;
                continue;
            }
            p.requires_grad = true;
            list.Add(new TrainableParameter(name, p, Decays(name, p.dim())));
        }
        return list;
    }

    /// <summary>The weight-decay rule for one parameter.</summary>
    public static bool Decays(string name, long dims) =>
        dims >= 2 && !name.Contains("embedding", StringComparison.Ordinal) && !name.StartsWith("logit_", StringComparison.Ordinal);
}

/// <summary>Linear warm-up to the base rate, then cosine decay to zero at the last step.</summary>
public sealed record CosineSchedule(double BaseLr, long WarmupSteps, long TotalSteps)
{
    public double At(long step)
    {
        if (step < WarmupSteps) return BaseLr * (step + 1) / WarmupSteps;
        var decaySteps = Math.Max(1, TotalSteps - WarmupSteps);
        var e = Math.Min(1.0, (double)(step - WarmupSteps) / decaySteps);
        return 0.5 * (1 + Math.Cos(Math.PI * e)) * BaseLr;
    }
}
