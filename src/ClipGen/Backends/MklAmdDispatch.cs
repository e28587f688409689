using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;
using TorchSharp;

namespace ClipGen.Backends;

/// <summary>
/// Makes the MKL inside TorchSharp's libtorch use its AVX2 GEMM kernels on AMD CPUs.
/// <para>
/// libtorch's float32 matrix multiplies go to MKL, which is linked into <c>libtorch_cpu.so</c>. MKL picks its kernels by
/// CPU vendor: on an AMD CPU with AVX2 and FMA it takes a path of its own for Zen (<c>mkl_blas_def_sgemm_kernel_0_zen</c>)
/// that runs the linear layers of a ViT at 100–130 GFLOP/s on this repository's 2-core Zen 2 test machine, while its AVX2
/// kernels, which that CPU runs correctly, reach 140–156 (docs/benchmarks.md, <c>gemm</c>). PyTorch as distributed by
/// Debian uses OpenBLAS, which has no such switch, and is faster by that margin.
/// </para>
/// <para>
/// MKL asks three of its own functions, <c>mkl_serv_intel_cpu</c>, <c>mkl_serv_intel_cpu_true</c> and
/// <c>mkl_serv_cpuiszen</c>, and calls them through libtorch's procedure linkage table. This class rewrites those table
/// slots in this process so that they answer "Intel" and "not Zen" (answering only "not Zen" drops MKL to its SSE
/// kernels, at a third of the speed); MKL then chooses by the instruction sets the CPU reports (AVX2, FMA), as it does on Intel CPUs.
/// It is the in-process form of the well-known <c>LD_PRELOAD</c> shim for MKL on AMD, which a library cannot ask its
/// users to set. It runs once, before the first model is built (<see cref="Modeling.ClipModule"/>'s static constructor),
/// because MKL may settle its choice at its first multiply.
/// </para>
/// <para>
/// It does nothing unless the process is Linux x64 on an AMD CPU with AVX2 and FMA and the loaded libtorch exports MKL;
/// setting the environment variable <c>CLIPGEN_MKL_AMD_DISPATCH=0</c> turns it off. It never throws: on anything
/// unexpected it leaves MKL as it was and says why in <see cref="State"/>. Results stay within float32 rounding of MKL's
/// own path (the parity tests run with it on).
/// </para>
/// </summary>
public static unsafe class MklAmdDispatch
{
    /// <summary>Set to <c>0</c> to leave MKL's own kernel choice alone.</summary>
    public const string EnvironmentVariable = "CLIPGEN_MKL_AMD_DISPATCH";

    const string Library = "libtorch_cpu.so";
    static readonly ProcessSetting Setting = new(EnvironmentVariable, "MKL's kernel choice", Apply);

    /// <summary>Applies the change on first use (idempotent, thread-safe) and says what happened.</summary>
    public static ProcessSettingState State => Setting.State;

    /// <summary>Same as reading <see cref="State"/>; call it before the process's first float32 matrix multiply.</summary>
    public static ProcessSettingState EnsureApplied() => State;

    static ProcessSettingState Apply()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return new(false, "only done on Linux x64");
        if (CpuVendor() != "AuthenticAMD")
            return new(false, $"CPU vendor {CpuVendor()}: MKL already takes its tuned kernels");
        if (!Avx2.IsSupported || !Fma.IsSupported)
            return new(false, "the CPU lacks AVX2 or FMA");

        torch.get_num_threads(); // makes TorchSharp load libtorch
        var maps = Mappings().ToList();
        var mapping = LibTorchMapping(maps);
        if (mapping.Path is null) return new(false, $"{Library} is not loaded in this process");
        var image = new ElfImage((byte*)mapping.Start);

        var targets = new (string Symbol, byte[] Code)[]
        {
            ("mkl_serv_intel_cpu", [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3]), // mov eax, 1; ret
            ("mkl_serv_intel_cpu_true", [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3]),
            ("mkl_serv_cpuiszen", [0x31, 0xC0, 0xC3]),                     // xor eax, eax; ret
        };
        var slots = new List<(nint Slot, nint Definition)>();
        foreach (var (symbol, _) in targets)
        {
            var found = image.JumpSlot(symbol);
            if (found is null) return new(false, $"{mapping.Path} does not call {symbol} through its PLT (no MKL, or another MKL build)");
            slots.Add(found.Value);
        }
        bool calledBefore = slots.Any(s => *(nint*)s.Slot == s.Definition);

        var stubs = ExecutableStubs(targets.Select(t => t.Code).ToArray());
        for (int i = 0; i < slots.Count; i++) WriteSlot(maps, (nint*)slots[i].Slot, stubs[i]);

        return new(true, "MKL uses its AVX2 kernels on this AMD CPU (mkl_serv_intel_cpu, mkl_serv_intel_cpu_true → 1, mkl_serv_cpuiszen → 0 in " +
            $"{Path.GetFileName(mapping.Path)})" +
            (calledBefore ? "; MKL had already run a multiply in this process, so its cached choice may still stand" : ""));
    }

    static Mapping LibTorchMapping(IEnumerable<Mapping> maps) =>
        maps.FirstOrDefault(m => m.Path.EndsWith("/" + Library, StringComparison.Ordinal) && m.Offset == 0);

    /// <summary>Where libtorch's PLT now sends a call to <paramref name="symbol"/> (for tests), or 0.</summary>
    internal static nint PltTarget(string symbol)
    {
        var mapping = LibTorchMapping(Mappings());
        if (mapping.Path is null) return 0;
        var slot = new ElfImage((byte*)mapping.Start).JumpSlot(symbol);
        return slot is null ? 0 : *(nint*)slot.Value.Slot;
    }

    /// <summary>The CPU's vendor string from CPUID leaf 0 (<c>AuthenticAMD</c>, <c>GenuineIntel</c>, …).</summary>
    internal static string CpuVendor()
    {
        if (!X86Base.IsSupported) return "unknown";
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<byte> name = stackalloc byte[12];
        BitConverter.TryWriteBytes(name, ebx);
        BitConverter.TryWriteBytes(name[4..], edx);
        BitConverter.TryWriteBytes(name[8..], ecx);
        return Encoding.ASCII.GetString(name);
    }

    /// <summary>Writes one PLT slot, lifting the page's write protection for the moment if it has any.</summary>
    static void WriteSlot(List<Mapping> maps, nint* slot, nint target)
    {
        var mapping = maps.First(m => (ulong)slot >= m.Start && (ulong)slot < m.End);
        if (mapping.Writable)
        {
            Volatile.Write(ref *slot, target);
            return;
        }
        nint page = (nint)((ulong)slot & ~0xFFFUL);
        if (mprotect(page, 0x1000, ProtRead | ProtWrite) != 0)
            throw new InvalidOperationException($"mprotect failed with errno {Marshal.GetLastPInvokeError()}");
        Volatile.Write(ref *slot, target);
        mprotect(page, 0x1000, ProtRead);
    }

    /// <summary>One page holding each machine-code stub, made read-and-execute; it lives as long as the process.</summary>
    static IntPtr[] ExecutableStubs(byte[][] codes)
    {
        const int pageSize = 0x1000;
        nint page = mmap(0, pageSize, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (page == -1) throw new InvalidOperationException($"mmap failed with errno {Marshal.GetLastPInvokeError()}");
        var result = new IntPtr[codes.Length];
        int at = 0;
        for (int i = 0; i < codes.Length; i++)
        {
            codes[i].CopyTo(new Span<byte>((byte*)page + at, codes[i].Length));
            result[i] = page + at;
            at += 16;
        }
        if (mprotect(page, pageSize, ProtRead | ProtExec) != 0)
            throw new InvalidOperationException($"mprotect failed with errno {Marshal.GetLastPInvokeError()}");
        return result;
    }

    readonly record struct Mapping(ulong Start, ulong End, bool Writable, ulong Offset, string Path);

    static IEnumerable<Mapping> Mappings()
    {
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            // start-end perms offset dev inode [path]
            var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 5) continue;
            var range = parts[0].Split('-');
            yield return new Mapping(
                ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                parts[1].Length > 1 && parts[1][1] == 'w',
                ulong.Parse(parts[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                parts.Length == 6 ? parts[5].Trim() : "");
        }
    }

    /// <summary>
    /// A loaded ELF64 shared object read in memory through its dynamic section, as the dynamic linker reads it: the PLT
    /// relocations (<c>DT_JMPREL</c>), the dynamic symbols (<c>DT_SYMTAB</c>) and their names (<c>DT_STRTAB</c>).
    /// </summary>
    sealed class ElfImage
    {
        const uint PtLoad = 1, PtDynamic = 2;
        const long DtNull = 0, DtPltRelSz = 2, DtStrTab = 5, DtSymTab = 6, DtPltRel = 20, DtJmpRel = 23, DtRela = 7;
        const uint RX8664JumpSlot = 7;

        readonly byte* _bias;
        readonly byte* _jmpRel, _symTab, _strTab;
        readonly long _jmpRelSize;

        public ElfImage(byte* header)
        {
            if (header[0] != 0x7F || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F' || header[4] != 2)
                throw new InvalidOperationException("not an ELF64 image");
            byte* phdrs = header + *(ulong*)(header + 0x20);
            int phentsize = *(ushort*)(header + 0x36), phnum = *(ushort*)(header + 0x38);
            ulong firstLoad = ulong.MaxValue, dynamicVaddr = 0;
            for (int i = 0; i < phnum; i++)
            {
                byte* ph = phdrs + i * phentsize;
                uint type = *(uint*)ph;
                ulong vaddr = *(ulong*)(ph + 16);
                if (type == PtLoad && firstLoad == ulong.MaxValue) firstLoad = vaddr & ~0xFFFUL;
                if (type == PtDynamic) dynamicVaddr = vaddr;
            }
            if (firstLoad == ulong.MaxValue || dynamicVaddr == 0) throw new InvalidOperationException("no PT_LOAD or PT_DYNAMIC");
            _bias = header - (long)firstLoad;

            long pltRel = 0;
            for (long* dyn = (long*)(_bias + dynamicVaddr); dyn[0] != DtNull; dyn += 2)
            {
                switch (dyn[0])
                {
                    case DtPltRelSz: _jmpRelSize = dyn[1]; break;
                    case DtStrTab: _strTab = Address(dyn[1]); break;
                    case DtSymTab: _symTab = Address(dyn[1]); break;
                    case DtJmpRel: _jmpRel = Address(dyn[1]); break;
                    case DtPltRel: pltRel = dyn[1]; break;
                }
            }
            if (_jmpRel == null || _symTab == null || _strTab == null || pltRel != DtRela)
                throw new InvalidOperationException("no RELA PLT relocations in the dynamic section");
        }

        /// <summary>glibc relocates some dynamic entries in place; an unrelocated one is an offset from the load bias.</summary>
        byte* Address(long value) => (ulong)value < (ulong)_bias ? _bias + value : (byte*)value;

        /// <summary>The GOT slot the PLT jumps through for <paramref name="symbol"/>, and the symbol's own definition.</summary>
        public (nint Slot, nint Definition)? JumpSlot(string symbol)
        {
            var wanted = Encoding.ASCII.GetBytes(symbol);
            for (long at = 0; at + 24 <= _jmpRelSize; at += 24)
            {
                ulong offset = *(ulong*)(_jmpRel + at), info = *(ulong*)(_jmpRel + at + 8);
                if ((uint)info != RX8664JumpSlot) continue;
                byte* sym = _symTab + (long)(info >> 32) * 24;
                if (!NameIs(_strTab + *(uint*)sym, wanted)) continue;
                ulong value = *(ulong*)(sym + 8);
                return ((nint)(_bias + (long)offset), value == 0 ? 0 : (nint)(_bias + (long)value));
            }
            return null;
        }

        static bool NameIs(byte* name, byte[] wanted)
        {
            for (int i = 0; i < wanted.Length; i++)
                if (name[i] != wanted[i]) return false;
            return name[wanted.Length] == 0;
        }
    }

    const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;

    [DllImport("libc", SetLastError = true)]
    static extern nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [DllImport("libc", SetLastError = true)]
    static extern int mprotect(nint addr, nuint length, int prot);
}
