using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ClipGen.Imaging;

/// <summary>
/// Pillow 9.4's resampling (libImaging/Resample.c and Geometry.c), bit for bit, restricted to a window of the
/// output. Every output pixel of Pillow's two-pass resize depends only on its own row and column coefficients,
/// so computing only the rows and columns that survive the crop gives exactly the values Pillow computes for them.
/// Pixels are 4 interleaved bytes (Pillow's layout for RGB, RGBA, LA and L-replicated images).
/// </summary>
internal static class PilResample
{
    /// <summary>Pillow's PRECISION_BITS: 32 - 8 - 2.</summary>
    internal const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Whether the SSE4.1 paths can run; tests pass <c>simd: false</c> to check the scalar path gives the same bytes.</summary>
    internal static readonly bool SimdSupported = Sse41.IsSupported;

    /// <summary>Whether the AVX2 paths (two taps or 32 bytes at a time; the same integer sums) can run; tests pass <c>avx2: false</c> for the SSE4.1 path.</summary>
    internal static readonly bool Avx2Supported = Avx2.IsSupported;

    /// <summary>Filter weights for a contiguous run of output positions along one axis.</summary>
    internal sealed class Coefficients
    {
        public required int KSize { get; init; }
        /// <summary>Per output position: first input index, number of taps.</summary>
        public required int[] Bounds { get; init; }
        /// <summary>Fixed-point weights (KSize per output position), as <c>normalize_coeffs_8bpc</c> makes them.</summary>
        public required int[] Fixed { get; init; }
        /// <summary><see cref="Fixed"/> with each weight repeated 4 times, so the SIMD loops load a ready broadcast.</summary>
        public required int[] Fixed4 { get; init; }
        /// <summary>The normalised double weights (KSize per output position), used by the 32-bit (mode I) path.</summary>
        public required double[] Real { get; init; }
        public int Count => Bounds.Length / 2;
        public int FirstInput => Bounds[0];
        public int EndInput
        {
            get
            {
                int end = 0;
                for (int i = 0; i < Count; i++) end = Math.Max(end, Bounds[2 * i] + Bounds[2 * i + 1]);
                return end;
            }
        }
    }

    static double BicubicFilter(double x)
    {
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    static double BilinearFilter(double x)
    {
        if (x < 0.0) x = -x;
        if (x < 1.0) return 1.0 - x;
        return 0.0;
    }

    /// <summary>
    /// <c>precompute_coeffs</c> + <c>normalize_coeffs_8bpc</c> for output positions
    /// <paramref name="first"/> .. <paramref name="first"/> + <paramref name="count"/> - 1 of a resize from
    /// <paramref name="inSize"/> to <paramref name="outSize"/> (box = the whole input).
    /// </summary>
    internal static Coefficients Compute(int inSize, int outSize, int first, int count, Interpolation interpolation)
    {
        // Batches usually repeat sizes: keep the last few coefficient sets (they are immutable once built).
        var key = (inSize, outSize, first, count, interpolation);
        if (Cache.TryGetValue(key, out var cached)) return cached;
        var made = ComputeUncached(inSize, outSize, first, count, interpolation);
        if (Cache.Count >= 256) Cache.Clear();
        Cache[key] = made;
        return made;
    }

    static readonly System.Collections.Concurrent.ConcurrentDictionary<(int, int, int, int, Interpolation), Coefficients> Cache = new();

    internal static Coefficients ComputeUncached(int inSize, int outSize, int first, int count, Interpolation interpolation)
    {
        Func<double, double> filter = interpolation == Interpolation.Bilinear ? BilinearFilter : BicubicFilter;
        double filterSupport = interpolation == Interpolation.Bilinear ? 1.0 : 2.0;
        // Pillow: filterscale = scale = (double)(in1 - in0) / outSize, with in0/in1 floats.
        double scale = (double)((float)inSize - 0f) / outSize;
        double filterscale = scale < 1.0 ? 1.0 : scale;
        double support = filterSupport * filterscale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        if ((long)count * ksize > int.MaxValue / 8) throw new ClipGenException($"resize from {inSize} to {outSize} pixels needs too many filter taps");

        var bounds = new int[count * 2];
        var real = new double[count * ksize];
        var fixedK = new int[count * ksize];
        double ss = 1.0 / filterscale;
        for (int i = 0; i < count; i++)
        {
            int xx = first + i;
            double center = 0.0 + (xx + 0.5) * scale;
            double ww = 0.0;
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            var k = real.AsSpan(i * ksize, ksize);
            for (int x = 0; x < xmax; x++)
            {
                double w = filter((x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (int x = 0; x < xmax; x++)
                if (ww != 0.0) k[x] /= ww;
            for (int x = 0; x < ksize; x++)
            {
                double v = k[x];
                fixedK[i * ksize + x] = v < 0 ? (int)(-0.5 + v * (1 << PrecisionBits)) : (int)(0.5 + v * (1 << PrecisionBits));
            }
            bounds[2 * i] = xmin;
            bounds[2 * i + 1] = xmax;
        }
        var fixed4 = new int[fixedK.Length * 4];
        for (int i = 0; i < fixedK.Length; i++) fixed4.AsSpan(4 * i, 4).Fill(fixedK[i]);
        return new Coefficients { KSize = ksize, Bounds = bounds, Fixed = fixedK, Fixed4 = fixed4, Real = real };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static byte Clip8(int v)
    {
        v >>= PrecisionBits;
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }

    /// <summary>
    /// Resizes the 4-byte-per-pixel <paramref name="src"/> (<paramref name="srcW"/>×<paramref name="srcH"/>, stride srcW·4)
    /// to <paramref name="outW"/>×<paramref name="outH"/> as Pillow's <c>ImagingResample</c> does (8 bits per channel), and
    /// writes only the window at (<paramref name="left"/>, <paramref name="top"/>) of size <paramref name="winW"/>×<paramref name="winH"/>
    /// into <paramref name="dst"/> (stride winW·4).
    /// </summary>
    internal static void Resample8(ReadOnlySpan<byte> src, int srcW, int srcH, int outW, int outH,
        int left, int top, int winW, int winH, Interpolation interpolation, Span<byte> dst, bool simd = true, bool avx2 = true)
    {
        simd &= SimdSupported;
        bool wide = simd && avx2 && Avx2Supported;
        bool needH = outW != srcW;
        bool needV = outH != srcH;
        int srcStride = srcW * 4;
        int winStride = winW * 4;
        if (!needH && !needV)
        {
            for (int y = 0; y < winH; y++)
                src.Slice((top + y) * srcStride + left * 4, winStride).CopyTo(dst.Slice(y * winStride, winStride));
            return;
        }

        var vert = needV ? Compute(srcH, outH, top, winH, interpolation) : null;
        int rowFirst = vert is null ? top : vert.FirstInput;
        int rowEnd = vert is null ? top + winH : vert.EndInput;
        int rows = rowEnd - rowFirst;

        if (!needH)
        {
            // Vertical pass straight from the source columns of the window.
            VerticalFromSource(src, srcStride, rowFirst, left * 4, winStride, vert!, dst, simd, wide);
            return;
        }

        var horiz = Compute(srcW, outW, left, winW, interpolation);
        if (!needV)
        {
            Horizontal(src, srcStride, rowFirst, rows, horiz, dst, simd, wide);
            return;
        }
        byte[] tmp = ArrayPool<byte>.Shared.Rent(rows * winStride);
        try
        {
            Horizontal(src, srcStride, rowFirst, rows, horiz, tmp, simd, wide);
            VerticalFromSource(tmp, winStride, rowFirst, 0, winStride, vert!, dst, simd, wide);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(tmp);
        }
    }

    /// <summary><c>ImagingResampleHorizontal_8bpc</c> over source rows rowFirst..rowFirst+rows-1.</summary>
    static unsafe void Horizontal(ReadOnlySpan<byte> src, int srcStride, int rowFirst, int rows, Coefficients c, Span<byte> dst, bool simd, bool wide)
    {
        int n = c.Count, ksize = c.KSize;
        int dstStride = n * 4;
        const int half = 1 << (PrecisionBits - 1);
        fixed (byte* s0 = src)
        fixed (byte* d0 = dst)
        fixed (int* kk = c.Fixed)
        fixed (int* kk4 = c.Fixed4)
        fixed (int* bounds = c.Bounds)
        {
            if (simd)
            {
                var init = Vector128.Create(half);
                for (int y = 0; y < rows; y++)
                {
                    byte* srow = s0 + (long)(rowFirst + y) * srcStride;
                    byte* drow = d0 + (long)y * dstStride;
                    for (int xx = 0; xx < n; xx++)
                    {
                        int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1];
                        int* k4 = kk4 + xx * ksize * 4;
                        byte* p = srow + xmin * 4;
                        var acc = init;
                        int x = 0;
                        if (wide)
                        {
                            // Two taps per step: 8 source bytes (two RGBA pixels) widened to 8 ints, times the two taps'
                            // weights (Fixed4 holds each weight 4 times, so taps x and x+1 are 8 consecutive ints); the
                            // halves are added after. Integer sums, so the result equals one tap at a time.
                            var acc2 = Vector256<int>.Zero;
                            for (; x + 2 <= xmax; x += 2)
                                acc2 += Avx2.ConvertToVector256Int32(p + x * 4) * Vector256.Load(k4 + 4 * x);
                            acc += acc2.GetLower() + acc2.GetUpper();
                        }
                        for (; x < xmax; x++)
                            acc += Sse41.ConvertToVector128Int32(p + x * 4) * Vector128.Load(k4 + 4 * x);
                        acc = Vector128.ShiftRightArithmetic(acc, PrecisionBits);
                        var w = Sse41.PackUnsignedSaturate(acc, acc);
                        var b = Sse2.PackUnsignedSaturate(w.AsInt16(), w.AsInt16());
                        *(uint*)(drow + xx * 4) = b.AsUInt32().ToScalar();
                    }
                }
                return;
            }
            for (int y = 0; y < rows; y++)
            {
                byte* srow = s0 + (long)(rowFirst + y) * srcStride;
                byte* drow = d0 + (long)y * dstStride;
                for (int xx = 0; xx < n; xx++)
                {
                    int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1];
                    int* k = kk + xx * ksize;
                    byte* p = srow + xmin * 4;
                    int ss0 = half, ss1 = half, ss2 = half, ss3 = half;
                    for (int x = 0; x < xmax; x++)
                    {
                        int w = k[x];
                        ss0 += p[x * 4] * w;
                        ss1 += p[x * 4 + 1] * w;
                        ss2 += p[x * 4 + 2] * w;
                        ss3 += p[x * 4 + 3] * w;
                    }
                    drow[xx * 4] = Clip8(ss0);
                    drow[xx * 4 + 1] = Clip8(ss1);
                    drow[xx * 4 + 2] = Clip8(ss2);
                    drow[xx * 4 + 3] = Clip8(ss3);
                }
            }
        }
    }

    /// <summary>
    /// <c>ImagingResampleVertical_8bpc</c>: output row i uses source rows Bounds[2i].. (absolute indices; the source
    /// buffer's first row is <paramref name="rowOrigin"/>), bytes colOffset..colOffset+rowBytes-1 of each row.
    /// </summary>
    static unsafe void VerticalFromSource(ReadOnlySpan<byte> src, int srcStride, int rowOrigin, int colOffset, int rowBytes, Coefficients c, Span<byte> dst, bool simd, bool wide)
    {
        int n = c.Count, ksize = c.KSize;
        const int half = 1 << (PrecisionBits - 1);
        fixed (byte* s0 = src)
        fixed (byte* d0 = dst)
        fixed (int* kk = c.Fixed)
        fixed (int* kk4 = c.Fixed4)
        fixed (int* bounds = c.Bounds)
        {
            for (int yy = 0; yy < n; yy++)
            {
                int ymin = bounds[2 * yy] - rowOrigin, ymax = bounds[2 * yy + 1];
                int* k = kk + yy * ksize;
                int* k4 = kk4 + yy * ksize * 4;
                byte* sbase = s0 + (long)ymin * srcStride + colOffset;
                byte* drow = d0 + (long)yy * rowBytes;
                int j = 0;
                if (wide)
                {
                    // 32 bytes per step: four 8-int accumulators, each weight broadcast (Fixed4's first copy).
                    var init8 = Vector256.Create(half);
                    for (; j + 32 <= rowBytes; j += 32)
                    {
                        Vector256<int> a0 = init8, a1 = init8, a2 = init8, a3 = init8;
                        byte* p = sbase + j;
                        for (int y = 0; y < ymax; y++, p += srcStride)
                        {
                            var w = Vector256.Create(k[y]);
                            a0 += Avx2.ConvertToVector256Int32(p) * w;
                            a1 += Avx2.ConvertToVector256Int32(p + 8) * w;
                            a2 += Avx2.ConvertToVector256Int32(p + 16) * w;
                            a3 += Avx2.ConvertToVector256Int32(p + 24) * w;
                        }
                        a0 = Vector256.ShiftRightArithmetic(a0, PrecisionBits);
                        a1 = Vector256.ShiftRightArithmetic(a1, PrecisionBits);
                        a2 = Vector256.ShiftRightArithmetic(a2, PrecisionBits);
                        a3 = Vector256.ShiftRightArithmetic(a3, PrecisionBits);
                        // packus works within 128-bit lanes; the permute puts the 8-byte groups back in order.
                        var lo = Avx2.PackUnsignedSaturate(a0, a1).AsInt16();
                        var hi = Avx2.PackUnsignedSaturate(a2, a3).AsInt16();
                        var bytes = Avx2.PackUnsignedSaturate(lo, hi);
                        Avx2.PermuteVar8x32(bytes.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsByte().Store(drow + j);
                    }
                }
                if (simd)
                {
                    var init = Vector128.Create(half);
                    for (; j + 16 <= rowBytes; j += 16)
                    {
                        Vector128<int> a0 = init, a1 = init, a2 = init, a3 = init;
                        byte* p = sbase + j;
                        for (int y = 0; y < ymax; y++, p += srcStride)
                        {
                            var w = Vector128.Load(k4 + 4 * y);
                            a0 += Sse41.ConvertToVector128Int32(p) * w;
                            a1 += Sse41.ConvertToVector128Int32(p + 4) * w;
                            a2 += Sse41.ConvertToVector128Int32(p + 8) * w;
                            a3 += Sse41.ConvertToVector128Int32(p + 12) * w;
                        }
                        a0 = Vector128.ShiftRightArithmetic(a0, PrecisionBits);
                        a1 = Vector128.ShiftRightArithmetic(a1, PrecisionBits);
                        a2 = Vector128.ShiftRightArithmetic(a2, PrecisionBits);
                        a3 = Vector128.ShiftRightArithmetic(a3, PrecisionBits);
                        var lo = Sse41.PackUnsignedSaturate(a0, a1).AsInt16();
                        var hi = Sse41.PackUnsignedSaturate(a2, a3).AsInt16();
                        Sse2.PackUnsignedSaturate(lo, hi).Store(drow + j);
                    }
                }
                for (; j < rowBytes; j++)
                {
                    int ss = half;
                    byte* p = sbase + j;
                    for (int y = 0; y < ymax; y++, p += srcStride) ss += *p * k[y];
                    drow[j] = Clip8(ss);
                }
            }
        }
    }

    /// <summary>
    /// Pillow's NEAREST resize (<c>ImagingScaleAffine</c>, used for modes P and 1): source positions are found by
    /// accumulating the double step, as Pillow does. Writes the window into <paramref name="dst"/> (stride winW·4).
    /// </summary>
    internal static void Nearest(ReadOnlySpan<byte> src, int srcW, int srcH, int outW, int outH,
        int left, int top, int winW, int winH, Span<byte> dst)
    {
        var xs = NearestTable(srcW, outW, left, winW);
        var ys = NearestTable(srcH, outH, top, winH);
        int srcStride = srcW * 4;
        for (int y = 0; y < winH; y++)
        {
            var drow = dst.Slice(y * winW * 4, winW * 4);
            int yi = ys[y];
            if (yi < 0) { drow.Clear(); continue; }
            var srow = src.Slice(yi * srcStride, srcStride);
            for (int x = 0; x < winW; x++)
            {
                int xi = xs[x];
                if (xi < 0) { drow.Slice(x * 4, 4).Clear(); continue; }
                srow.Slice(xi * 4, 4).CopyTo(drow.Slice(x * 4, 4));
            }
        }
    }

    /// <summary>Input index per output position first..first+count-1, or -1 where Pillow leaves the (zeroed) pixel unset.</summary>
    static int[] NearestTable(int inSize, int outSize, int first, int count)
    {
        double a = (double)((float)inSize - 0f) / outSize;
        double xo = 0.0 + a * 0.5;
        var table = new int[count];
        for (int x = 0; x < first + count; x++)
        {
            if (x >= first)
            {
                int xin = xo < 0.0 ? -1 : (int)xo;
                table[x - first] = xin >= 0 && xin < inSize ? xin : -1;
            }
            xo += a;
        }
        return table;
    }

    /// <summary>
    /// Pillow's 32-bit integer (mode I) resample: double weights, <c>ROUND_UP</c> after each pass, no clipping.
    /// <paramref name="src"/> holds one int per pixel; the window is written to <paramref name="dst"/> (stride winW).
    /// </summary>
    internal static void Resample32(ReadOnlySpan<int> src, int srcW, int srcH, int outW, int outH,
        int left, int top, int winW, int winH, Interpolation interpolation, Span<int> dst)
    {
        bool needH = outW != srcW;
        bool needV = outH != srcH;
        var vert = needV ? Compute(srcH, outH, top, winH, interpolation) : null;
        int rowFirst = vert is null ? top : vert.FirstInput;
        int rows = (vert is null ? top + winH : vert.EndInput) - rowFirst;

        // Horizontal pass (or a plain copy of the window's columns) into tmp: rows × winW.
        var tmp = new int[rows * winW];
        if (needH)
        {
            var h = Compute(srcW, outW, left, winW, interpolation);
            for (int y = 0; y < rows; y++)
            {
                var srow = src.Slice((rowFirst + y) * srcW, srcW);
                for (int xx = 0; xx < winW; xx++)
                {
                    int xmin = h.Bounds[2 * xx], xmax = h.Bounds[2 * xx + 1];
                    double ss = 0.0;
                    for (int x = 0; x < xmax; x++) ss += srow[x + xmin] * h.Real[xx * h.KSize + x];
                    tmp[y * winW + xx] = RoundUp(ss);
                }
            }
        }
        else
        {
            for (int y = 0; y < rows; y++) src.Slice((rowFirst + y) * srcW + left, winW).CopyTo(tmp.AsSpan(y * winW, winW));
        }

        if (vert is null)
        {
            tmp.AsSpan(0, winH * winW).CopyTo(dst);
            return;
        }
        for (int yy = 0; yy < winH; yy++)
        {
            int ymin = vert.Bounds[2 * yy] - rowFirst, ymax = vert.Bounds[2 * yy + 1];
            for (int xx = 0; xx < winW; xx++)
            {
                double ss = 0.0;
                for (int y = 0; y < ymax; y++) ss += tmp[(y + ymin) * winW + xx] * vert.Real[yy * vert.KSize + y];
                dst[yy * winW + xx] = RoundUp(ss);
            }
        }
    }

    /// <summary>Pillow 9.4's <c>ROUND_UP(f)</c>: <c>(int)(f &gt;= 0 ? f + 0.5F : f - 0.5F)</c>.</summary>
    static int RoundUp(double f) => (int)(f >= 0.0 ? f + 0.5 : f - 0.5);

    /// <summary>Pillow's <c>rgbA2rgba</c> (RGBA → RGBa): colour · alpha / 255 with MULDIV255 rounding, in place.</summary>
    internal static void Premultiply(Span<byte> rgba)
    {
        for (int i = 0; i + 3 < rgba.Length; i += 4)
        {
            uint alpha = rgba[i + 3];
            rgba[i] = MulDiv255(rgba[i], alpha);
            rgba[i + 1] = MulDiv255(rgba[i + 1], alpha);
            rgba[i + 2] = MulDiv255(rgba[i + 2], alpha);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static byte MulDiv255(uint a, uint b)
    {
        uint tmp = a * b + 128;
        return (byte)(((tmp >> 8) + tmp) >> 8);
    }

    /// <summary>Pillow's <c>rgba2rgbA</c> (RGBa → RGBA): colour · 255 / alpha clipped to 255; alpha 0 and 255 leave colour as is. In place.</summary>
    internal static void Unpremultiply(Span<byte> rgba)
    {
        for (int i = 0; i + 3 < rgba.Length; i += 4)
        {
            int alpha = rgba[i + 3];
            if (alpha == 255 || alpha == 0) continue;
            rgba[i] = (byte)Math.Min(255, 255 * rgba[i] / alpha);
            rgba[i + 1] = (byte)Math.Min(255, 255 * rgba[i + 1] / alpha);
            rgba[i + 2] = (byte)Math.Min(255, 255 * rgba[i + 2] / alpha);
        }
    }
}
