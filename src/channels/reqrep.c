/* PLACEHOLDER: being written. */
typedef int yti_placeholder_reqrep;
