using System.Globalization;
using ClipGen.Specs;

namespace ClipGen.Modeling;

/// <summary>
/// The memory a model may take: a spec whose planned weights cannot fit is refused before anything is allocated, with the
/// numbers, instead of failing deep inside libtorch's allocator (or being killed by the OOM killer) later.
/// </summary>
public static class ModelLimits
{
    /// <summary>Environment variable that sets the largest model (bytes of float32 weights) ClipGen builds.</summary>
    public const string MaxModelBytesVariable = "CLIPGEN_MAX_MODEL_BYTES";

    /// <summary>
    /// The largest model, in bytes of float32 weights: <see cref="MaxModelBytesVariable"/> when set, else the memory this process
    /// may use (the GC's view of physical memory or the container limit).
    /// </summary>
    public static long MaxModelBytes
    {
        get
        {
            var env = Environment.GetEnvironmentVariable(MaxModelBytesVariable);
            if (!string.IsNullOrWhiteSpace(env) && long.TryParse(env, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0) return v;
            return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        }
    }

    /// <summary>Throws when the plan's weights exceed <see cref="MaxModelBytes"/>.</summary>
    /// <exception cref="ClipGenException">The model cannot fit.</exception>
    public static void CheckFits(ClipSpec spec, ClipPlan plan)
    {
        long need = plan.WeightBytes, max = MaxModelBytes;
        if (need <= max) return;
        throw new ClipGenException(
            $"spec '{spec.Name}' plans {plan.ParameterCount:N0} parameters ({Gib(need)} of float32 weights), more than the {Gib(max)} this process may use; " +
            $"check its sizes (width, layers, vocab_size, context_length), or raise the limit with {MaxModelBytesVariable}");
    }

    static string Gib(long bytes) => (bytes / (1024.0 * 1024 * 1024)).ToString("0.##", CultureInfo.InvariantCulture) + " GiB";
}
