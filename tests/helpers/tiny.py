"""The smallest AttendNeXt the builder's rules allow, for tests (and their child processes) of training mechanics,
where tracing time, not the model, is the cost: two columns, DC-AC in two stages, AADS; 123 layers at 32 px against
micro's 276."""

from attendnext_keras import specs as S


def _columns(n, *blocks):
    return tuple(S.ColumnSpec(tuple(blocks)) for _ in range(n))


def _dwsep(filters):
    return S.BlockSpec("dwsep", filters=filters)


_DCAC = S.BlockSpec("dcac", dcac=S.DCACSpec())

TINY = S.MICRO.replace(name="toy", input_size=32, description="Tests only.", stages=(
    S.StageSpec(columns=_columns(2, _dwsep(24), _DCAC), downsample="max", merge="none"),
    S.StageSpec(columns=_columns(2, _dwsep(48), _DCAC), downsample="max", merge="concat"),
    S.StageSpec(columns=_columns(1, _dwsep(128)), downsample="blur", merge="concat"),
    S.StageSpec(columns=_columns(1, _dwsep(384)), downsample="blur", merge="concat")))
