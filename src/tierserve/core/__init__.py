"""Image core: tier maths, region reading, windowing and encoding. Knows nothing of HTTP or SQL."""
