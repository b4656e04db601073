"""Datasets: the synthetic STRF generator, the NS1 fetcher and the skstrf HDF5 format."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "make_strf_dataset": "_synthetic",
        "make_realistic_dataset": "_synthetic",
        "fetch_ns1": "_ns1",
        "load_ns1": "_ns1",
        "save_dataset": "_hdf5",
        "save_stimuli": "_hdf5",
        "load_dataset": "_hdf5",
        "LazyDataset": "_hdf5",
        "DatasetFormatError": "_hdf5",
        "NS1FormatError": "_ns1",
        "DownloadError": "_download",
        "ChecksumError": "_download",
        "get_data_home": "_download",
    },
)
