namespace ClipGen;

/// <summary>What a process-wide setting (<see cref="NativeHeap"/>, the TorchSharp layer's MKL dispatch) did in this process.</summary>
/// <param name="Applied">True when the setting took effect.</param>
/// <param name="Detail">What was set, or why nothing was.</param>
public sealed record ProcessSettingState(bool Applied, string Detail);

/// <summary>
/// A setting applied at most once per process: skipped when its environment variable is <c>0</c>, applied on first use
/// under a lock, and never throwing (a failure leaves things as they were and says why in the state).
/// </summary>
internal sealed class ProcessSetting(string environmentVariable, string what, Func<ProcessSettingState> apply)
{
    readonly object _gate = new();
    ProcessSettingState? _state;

    public ProcessSettingState State
    {
        get
        {
            lock (_gate) return _state ??= Apply();
        }
    }

    ProcessSettingState Apply()
    {
        if (Environment.GetEnvironmentVariable(environmentVariable) == "0")
            return new(false, $"{what} left as it was ({environmentVariable}=0)");
        try
        {
            return apply();
        }
        catch (Exception e)
        {
            return new(false, $"{what} left as it was: {e.GetType().Name}: {e.Message}");
        }
    }
}
