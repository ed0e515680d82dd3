"""The user-owned model families and names: what their files are called and where users get them.

One entry per family (SMPL, SMPL+H, SMPL-X, MANO, FLAME, SMAL) with the owner's site and the words every
error about its files ends with, and one :class:`_Spec` per model name users type (``smplx-female``,
``flame-expression``, ...). Finding, reading (:mod:`.user_models`) and building (:mod:`.smpl_family`) all
look a name up here.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_COMPONENTS = 10  # smplx's own default (num_betas = num_expression_coeffs = 10) and the paper's
LICENCE = "non-commercial (owner's licence)"


@dataclass(frozen=True)
class _Family:
    """What one family's files look like and where users get them."""

    title: str
    source: str  # the owner's site
    obtain: str  # how to get the files, said in every error about them
    vertex_count: int  # of the official files (shown by `semantify models` before loading)


_FAMILIES = {
    "smpl": _Family(
        "SMPL",
        "smpl.is.tue.mpg.de",
        "Register at https://smpl.is.tue.mpg.de and download 'SMPL for Python' (v1.1.0); its "
        "smpl/models folder holds basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl (and _m_ / _f_ for male and "
        "female), usable as they are or renamed SMPL_NEUTRAL.pkl, SMPL_MALE.pkl, SMPL_FEMALE.pkl",
        6890,
    ),
    "smplh": _Family(
        "SMPL+H",
        "mano.is.tue.mpg.de",
        "Register at https://mano.is.tue.mpg.de and download 'Models & Code' (mano_v1_2); its models "
        "folder holds SMPLH_male.pkl and SMPLH_female.pkl. A neutral SMPL+H is the 'Extended SMPL+H "
        "model' on the same site (neutral/model.npz: keep it as smplh/neutral/model.npz)",
        6890,
    ),
    "smplx": _Family(
        "SMPL-X",
        "smpl-x.is.tue.mpg.de",
        "Register at https://smpl-x.is.tue.mpg.de and download SMPL-X v1.1 (NPZ+PKL); it holds "
        "SMPLX_NEUTRAL.npz, SMPLX_MALE.npz and SMPLX_FEMALE.npz",
        10475,
    ),
    "mano": _Family(
        "MANO",
        "mano.is.tue.mpg.de",
        "Register at https://mano.is.tue.mpg.de and download 'Models & Code' (mano_v1_2); its models "
        "folder holds MANO_RIGHT.pkl and MANO_LEFT.pkl",
        778,
    ),
    "flame": _Family(
        "FLAME",
        "flame.is.tue.mpg.de",
        "Register at https://flame.is.tue.mpg.de and download FLAME 2020; it holds generic_model.pkl, the "
        "neutral model (usable as is or renamed FLAME_NEUTRAL.pkl). The landmark embedding files "
        "(flame_static_embedding.pkl, flame_dynamic_embedding.npy) are not needed",
        5023,
    ),
    "smal": _Family(
        "SMAL",
        "smal.is.tue.mpg.de",
        "Register at https://smal.is.tue.mpg.de and download the SMAL model; it holds smal_CVPR2017.pkl",
        3889,
    ),
}


@dataclass(frozen=True)
class _Spec:
    """One user model name: which family, which file, which coefficients."""

    name: str
    family: str
    kind: str
    file_names: tuple[str, ...]  # accepted names inside <folder>/<family>/, smplx's name first
    gender: str = "neutral"
    expression: bool = False  # basis = expression directions instead of shape directions
    right_hand: bool = True

    @property
    def subfolder(self) -> str:
        return self.family


def _catalogue() -> dict[str, _Spec]:
    """Every user model name, grouped by family in the order `semantify models` lists them."""
    specs: list[_Spec] = []
    genders = {"neutral": "neutral", "male": "m", "female": "f"}
    for gender, short in genders.items():
        upper = gender.upper()
        originals = tuple(f"basicmodel_{short}_lbs_10_207_0_v1.{minor}.0.pkl" for minor in (1, 0))
        specs.append(
            _Spec(
                f"smpl-{gender}",
                "smpl",
                "body",
                (f"SMPL_{upper}.pkl", f"SMPL_{upper}.npz", *originals),
                gender,
            )
        )
    for gender in genders:
        upper = gender.upper()
        names = (f"SMPLH_{upper}.pkl", f"SMPLH_{upper}.npz", f"{gender}/model.npz")
        specs.append(_Spec(f"smplh-{gender}", "smplh", "body", names, gender))
    for gender in genders:
        upper = gender.upper()
        specs.append(
            _Spec(f"smplx-{gender}", "smplx", "body", (f"SMPLX_{upper}.npz", f"SMPLX_{upper}.pkl"), gender)
        )
    for side in ("right", "left"):
        upper = side.upper()
        names = (f"MANO_{upper}.pkl", f"MANO_{upper}.npz")
        specs.append(_Spec(f"mano-{side}", "mano", "hand", names, right_hand=side == "right"))
    flame_names = ("FLAME_NEUTRAL.pkl", "FLAME_NEUTRAL.npz", "generic_model.pkl")
    specs.append(_Spec("flame-shape", "flame", "head-shape", flame_names))
    specs.append(_Spec("flame-expression", "flame", "face-expression", flame_names, expression=True))
    specs.append(_Spec("smal", "smal", "animal", ("smal_CVPR2017.pkl",)))
    return {spec.name: spec for spec in specs}


_SPECS = _catalogue()
USER_MODEL_NAMES: tuple[str, ...] = tuple(_SPECS)
