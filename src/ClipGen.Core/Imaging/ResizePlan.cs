namespace ClipGen.Imaging;

/// <summary>
/// Where the pixels of the square output come from: the source is resized to ResizedW×ResizedH, the window
/// (WinLeft, WinTop, WinW×WinH) of that is kept and placed at (PadLeft, PadTop); the rest is the fill colour.
/// </summary>
internal readonly record struct ResizePlan(int ResizedW, int ResizedH, int WinLeft, int WinTop, int WinW, int WinH, int PadLeft, int PadTop)
{
    public static ResizePlan For(int width, int height, int size, ResizeMode mode)
    {
        switch (mode)
        {
            case ResizeMode.Shortest:
            {
                // torchvision 0.14 _compute_resized_output_size: short -> size, long -> int(size * long / short).
                bool wShort = width <= height;
                int shortSide = wShort ? width : height, longSide = wShort ? height : width;
                int newLong = (int)((double)((long)size * longSide) / shortSide);
                int w = wShort ? size : newLong, h = wShort ? newLong : size;
                // torchvision center_crop: int(round((h - th) / 2.0)), Python rounds half to even (as Math.Round does).
                int top = (int)Math.Round((h - size) / 2.0, MidpointRounding.ToEven);
                int left = (int)Math.Round((w - size) / 2.0, MidpointRounding.ToEven);
                return new ResizePlan(w, h, left, top, size, size, 0, 0);
            }
            case ResizeMode.Longest:
            {
                // open_clip ResizeKeepRatio(longest=1): ratio = max(h/size, w/size); new = round(side / ratio).
                double ratio = Math.Max((double)height / size, (double)width / size);
                int h = Math.Max(1, (int)Math.Round(height / ratio, MidpointRounding.ToEven));
                int w = Math.Max(1, (int)Math.Round(width / ratio, MidpointRounding.ToEven));
                h = Math.Min(h, size);
                w = Math.Min(w, size);
                // open_clip center_crop_or_pad: pad left/top = (size - side) // 2.
                return new ResizePlan(w, h, 0, 0, w, h, (size - w) / 2, (size - h) / 2);
            }
            case ResizeMode.Squash:
                return new ResizePlan(size, size, 0, 0, size, size, 0, 0);
            default:
                throw new ArgumentOutOfRangeException(nameof(mode));
        }
    }
}
