namespace ClipGen;

/// <summary>
/// A dense row-major array and its shape: what crosses between the applications and an engine (pixels [N,3,R,R] float32,
/// token ids [N,L] int64, features [N,E], logits [N,M]). It is plain managed memory, so ClipGen.Core needs no tensor library;
/// the TorchSharp layer converts with <c>ToTensor()</c> and <c>ToArrayTensor()</c>.
/// </summary>
/// <typeparam name="T">The element type (float or long in practice).</typeparam>
public sealed class ArrayTensor<T> where T : unmanaged
{
    readonly long[] _shape;

    /// <summary>Wraps <paramref name="data"/> (not copied) as a tensor of <paramref name="shape"/>; the sizes must agree.</summary>
    public ArrayTensor(T[] data, params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(",", shape)}]", nameof(shape));
            count = checked(count * d);
        }
        if (count != data.Length)
            throw new ArgumentException($"{data.Length} values do not fill the shape [{string.Join(",", shape)}] ({count} values)", nameof(data));
        Data = data;
        _shape = (long[])shape.Clone();
    }

    /// <summary>The values, row-major (the array itself, not a copy).</summary>
    public T[] Data { get; }

    /// <summary>The shape (a fresh copy on every call).</summary>
    public long[] Shape => (long[])_shape.Clone();

    /// <summary>The number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>The size of dimension <paramref name="dim"/>.</summary>
    public long Dim(int dim) => _shape[dim];

    /// <summary>The size of the first dimension (the batch).</summary>
    public int Rows => _shape.Length == 0 ? 1 : (int)_shape[0];

    /// <summary>The number of values in one row (the product of the dimensions after the first).</summary>
    public int RowLength => _shape.Length == 0 ? 1 : (_shape[0] == 0 ? (int)Product(1) : Data.Length / (int)_shape[0]);

    /// <summary>Row <paramref name="row"/> as a span over <see cref="Data"/>.</summary>
    public Span<T> Row(int row) => Data.AsSpan(row * RowLength, RowLength);

    /// <summary>Rows [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>) as a new tensor (copied).</summary>
    public ArrayTensor<T> Slice(int start, int count)
    {
        var shape = Shape;
        shape[0] = count;
        return new ArrayTensor<T>(Data.AsSpan(start * RowLength, count * RowLength).ToArray(), shape);
    }

    /// <summary>Row-major tensors stacked along the first dimension (all with the same row shape).</summary>
    public static ArrayTensor<T> Concat(IReadOnlyList<ArrayTensor<T>> parts, params long[] rowShape)
    {
        ArgumentNullException.ThrowIfNull(parts);
        long rows = 0, total = 0;
        foreach (var p in parts) { rows += p.Rows; total += p.Data.Length; }
        var data = new T[total];
        int at = 0;
        foreach (var p in parts) { p.Data.CopyTo(data, at); at += p.Data.Length; }
        return new ArrayTensor<T>(data, [rows, .. rowShape]);
    }

    long Product(int from)
    {
        long p = 1;
        for (int i = from; i < _shape.Length; i++) p *= _shape[i];
        return p;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{typeof(T).Name}[{string.Join(",", _shape)}]";
}
