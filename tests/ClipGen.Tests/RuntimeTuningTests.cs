using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using ClipGen.Backends;
using Xunit;
using static TorchSharp.torch;

namespace ClipGen.Tests;

/// <summary>
/// The two process-level speed settings of the TorchSharp backend (docs/benchmarks.md, "TorchSharp against PyTorch"):
/// MKL's AVX2 kernels on AMD CPUs, and glibc keeping freed tensor memory. Neither may change a computed value.
/// </summary>
public unsafe class RuntimeTuningTests
{
    static bool AmdWithAvx2 =>
        OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64 &&
        MklAmdDispatch.CpuVendor() == "AuthenticAMD" && Avx2.IsSupported && Fma.IsSupported &&
        Environment.GetEnvironmentVariable(MklAmdDispatch.EnvironmentVariable) != "0";

    [Fact]
    public void Mkl_answers_intel_and_not_zen_through_libtorchs_plt_on_amd_cpus()
    {
        var state = MklAmdDispatch.EnsureApplied();
        Assert.Equal(AmdWithAvx2, state.Applied);
        Assert.False(string.IsNullOrWhiteSpace(state.Detail));
        if (!state.Applied) return;

        // The slots libtorch's MKL calls through now run our answers, not MKL's CPUID check.
        var intel = (delegate* unmanaged<int>)MklAmdDispatch.PltTarget("mkl_serv_intel_cpu");
        var intelTrue = (delegate* unmanaged<int>)MklAmdDispatch.PltTarget("mkl_serv_intel_cpu_true");
        var zen = (delegate* unmanaged<int>)MklAmdDispatch.PltTarget("mkl_serv_cpuiszen");
        Assert.True(intel != null && intelTrue != null && zen != null);
        Assert.Equal(1, intel());
        Assert.Equal(1, intelTrue());
        Assert.Equal(0, zen());
        Assert.Same(state, MklAmdDispatch.EnsureApplied()); // once per process
    }

    [Theory]
    [InlineData(1600, 768, 2304)] // ViT-B-32's qkv at batch 32
    [InlineData(77, 512, 2048)]   // a text tower's MLP, odd row count
    [InlineData(3, 5, 7)]
    public void Float32_matmul_after_the_dispatch_matches_a_float64_reference(int m, int k, int n)
    {
        MklAmdDispatch.EnsureApplied();
        var rng = new Random(m * 31 + k * 7 + n);
        var a = new float[m * k];
        var b = new float[k * n];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() * 2 - 1);
        using var ta = tensor(a).reshape(m, k);
        using var tb = tensor(b).reshape(k, n);
        using var tc = ta.matmul(tb);
        var c = tc.data<float>().ToArray();

        // Each entry is a sum of k products of magnitude ≤ 1: float32 accumulation error is a few ulps of √k-sized sums.
        double tolerance = 1e-5 * k;
        for (int i = 0; i < m; i += Math.Max(1, m / 40))
            for (int j = 0; j < n; j += Math.Max(1, n / 40))
            {
                double want = 0;
                for (int p = 0; p < k; p++) want += (double)a[i * k + p] * b[p * n + j];
                Assert.True(Math.Abs(c[i * n + j] - want) <= tolerance, $"C[{i},{j}] = {c[i * n + j]}, float64 reference {want}");
            }
    }

    [StructLayout(LayoutKind.Sequential)]
    struct MallInfo2
    {
        public nuint Arena, OrdBlks, SmBlks, HBlks, HBlkHd, UsmBlks, FsmBlks, UordBlks, FordBlks, KeepCost;
    }

    [DllImport("libc")]
    static extern MallInfo2 mallinfo2();

    [Fact]
    public void With_freed_memory_retained_glibc_serves_a_48_MiB_block_from_its_heap_not_from_mmap()
    {
        var state = NativeHeap.RetainFreedMemory();
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(NativeHeap.EnvironmentVariable) == "0")
        {
            Assert.False(state.Applied);
            return;
        }
        Assert.True(state.Applied, state.Detail);
        Assert.Same(state, NativeHeap.RetainFreedMemory());

        // glibc's default maps every block over 32 MiB on its own (mallinfo2's hblkhd counts those bytes). On a thread other
        // than the main one, glibc's per-thread heaps end at 64 MiB, so 48 MiB is what any thread's heap can serve.
        const long size = 48L << 20;
        var before = mallinfo2();
        using (var t = empty(size / 4, dtype: float32))
        {
            t.fill_(1f);
            var during = mallinfo2();
            Assert.True((long)during.HBlkHd - (long)before.HBlkHd < size,
                $"a {size >> 20} MiB tensor was mmap'd on its own (hblkhd {before.HBlkHd} → {during.HBlkHd})");
            Assert.Equal(size / 4, (long)t.sum().item<float>());
        }
    }
}
