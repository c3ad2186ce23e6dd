import { apiSuite } from './api.case.js';

apiSuite('sqlite');
