// SPDX-License-Identifier: MIT
// Workgroup-wide sum / max over 64 invocations through shared memory
// (no subgroup features needed).
shared float red[64];

float wg_sum(float v)
{
    uint t = gl_LocalInvocationID.x;
    barrier();
    red[t] = v;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (t < s)
            red[t] += red[t + s];
        barrier();
    }
    return red[0];
}

float wg_max(float v)
{
    uint t = gl_LocalInvocationID.x;
    barrier();
    red[t] = v;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (t < s)
            red[t] = max(red[t], red[t + s]);
        barrier();
    }
    return red[0];
}
